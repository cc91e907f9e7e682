"""Volatility: realized volatility of the next 1-4 hours. HAR + time-of-day profile, then boosted trees.

Two stages on log realized volatility, both fitted on the fit rows only:

1. a robust linear HAR stage (Huber regression): log RV[t, t+h] on the logs of the model's trailing
   realized-volatility features (`realized_vol_<n>`: with n = 60, 240, 1440 the HAR lags of 1 hour, 4 hours
   and 1 day at 1m scale) and the Andersen-Bollerslev Fourier flexible form of the time of day, K =
   `profile_harmonics` cos/sin pairs of the clock angle in the middle of the forecast window (read from the
   `hour_sin` / `hour_cos` features, so serving needs nothing else). A smooth profile of 2K parameters
   cannot memorise the hour of one crash as trees on the raw hour did (docs/DECISIONS.md);
2. gradient-boosted trees on the linear stage's residual, from the other features (never the raw hour).

The forecast is exp(stage 1 + stage 2) times Duan's smearing factor mean(v / exp(fit)) on the calibration
slice (the bias correction of a log target: exp(E[log v]) is a geometric mean, below the mean of v).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.linear_model import HuberRegressor

from app.core.errors import BadInput
from app.data.frames import TIMEFRAME_MS
from app.ml import fast_trees, har, targets
from app.ml.artifacts import load_skops, save_skops
from app.ml.calibration import binned_lookup, binned_rates
from app.ml.families import RegressorModel

TRUSTED = ["sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor"]
HOUR_MS = 3_600_000
DAY_MS = 86_400_000
FLOOR = 1e-8  # a window without a single price change has volatility 0; its log needs a floor
LAG_FLOOR = 1e-6  # trailing 1-bar volatility below this (a frozen market) counts as this in the HAR stage
HOUR_FEATURES = ("hour_sin", "hour_cos")
SLOW_LAG_MS = 12 * HOUR_MS  # a trailing volatility over this long or more feeds the linear stage only


def _bars_per_hour(timeframe: str) -> int:
    return max(1, HOUR_MS // TIMEFRAME_MS[timeframe])


DEFAULT_FEATURES = (
    "realized_vol_30", "realized_vol_60", "realized_vol_240", "natr_14", "range_pct", "bb_width_20",
    "volume_ratio_20", "adx_14", "returns", "returns_5", "hour_sin", "hour_cos",
)  # the hour only through the smooth Fourier profile of the linear stage, never into the trees; the daily
#   lag realized_vol_1440 (config/models.yaml) costs a day of warm-up, too much for a 3-day window


def is_har_lag(name: str) -> bool:
    return name.startswith("realized_vol_")


def lag_bars(name: str) -> int:
    return int(name.rsplit("_", 1)[1])


def fourier_terms(hour_sin: np.ndarray, hour_cos: np.ndarray, shift_ms: float, harmonics: int) -> np.ndarray:
    """cos(k a), sin(k a), k = 1..K, of the clock angle a at the candle's open plus `shift_ms`."""
    angle = np.arctan2(hour_sin, hour_cos) + 2.0 * np.pi * shift_ms / DAY_MS
    k = np.arange(1, harmonics + 1)
    return np.column_stack([np.cos(np.outer(angle, k)), np.sin(np.outer(angle, k))])


class VolatilityRegressor(RegressorModel):
    """Huber HAR + Fourier time-of-day stage, then HistGradientBoostingRegressor (seeded, no early
    stopping) on its residual, all on log realized volatility (see the module docstring).

    Target: sqrt(sum of squared 1-bar log returns over the next h bars), h = 1..4 hours (default 1 h).
    exp(E[log v]) is a geometric mean, below the mean of v; the smearing factor `level` = mean(v / raw)
    on the calibration slice (Duan 1983, as the HAR-RV baseline does) puts the forecast back on the scale
    of v. Without `realized_vol_<n>` features the linear stage has no lags; without
    `hour_sin` and `hour_cos` it has no profile.
    Confidence: the probability that the realized volatility falls within +/-`band` (default 25%) of the
    prediction. On the calibration slice, rows are put in 5 quantile bins of the predicted volatility and
    each bin's frequency of landing inside the band is kept (Laplace-smoothed); a prediction states its
    bin's frequency. Validation reports stated vs observed band coverage on the holdout.
    """

    kind = "volatility"
    model_type = "gradient_boosting"
    artifact_file = "model.skops"
    rows_independent = True
    baseline_names = ("persistence", "train_mean", "har_rv")
    description = "Predicts the realized volatility of the next hours (sqrt of summed squared log returns)"
    default_features = DEFAULT_FEATURES

    def __init__(
        self,
        max_iter: int = 100,
        learning_rate: float = 0.05,
        max_leaf_nodes: int = 15,
        min_samples_leaf: int = 200,
        band: float = 0.25,
        profile_harmonics: int = 1,
        *,
        features: Sequence[str] = DEFAULT_FEATURES,
        horizon: int = HOUR_MS // TIMEFRAME_MS["1m"],
        timeframe: str = "1m",
        seed: int = 42,
        train_ratio: float = 0.8,
        calibration_ratio: float = 0.2,
    ) -> None:
        self.max_iter = max_iter
        self.learning_rate = learning_rate
        self.max_leaf_nodes = max_leaf_nodes
        self.min_samples_leaf = min_samples_leaf
        self.band = band
        self.profile_harmonics = profile_harmonics
        super().__init__(
            features=features, horizon=horizon, timeframe=timeframe, seed=seed, train_ratio=train_ratio,
            calibration_ratio=calibration_ratio,
        )

    @classmethod
    def default_horizon(cls, timeframe: str) -> int:
        return _bars_per_hour(timeframe)

    @classmethod
    def check_horizon(cls, horizon: int, timeframe: str) -> None:
        hour = _bars_per_hour(timeframe)
        if TIMEFRAME_MS[timeframe] > HOUR_MS or not hour <= horizon <= 4 * hour:
            raise BadInput(f"volatility horizon must be 1-4 hours ({hour}..{4 * hour} bars of {timeframe}), "
                           f"got {horizon}")

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.target_tags.positive_only = True  # a volatility; its logarithm is what the trees learn
        return tags

    def target(self, candles: pd.DataFrame) -> pd.Series:
        return targets.realized_volatility(candles, int(self.horizon))

    def baseline_inputs(self, candles: pd.DataFrame) -> dict[str, pd.Series]:
        return har.lag_inputs(candles, int(self.horizon), self.bar_ms)

    def _label_stats(self, y: np.ndarray, meta: pd.DataFrame | None) -> dict:
        stats = super()._label_stats(y, meta)
        if meta is not None:
            stats["har"] = har.fit(y, meta, int(self.horizon), self.bar_ms)
        return stats

    def _check_own_params(self) -> None:
        k = self.profile_harmonics
        if isinstance(k, bool) or not isinstance(k, int) or not 0 <= k <= 12:
            raise BadInput(f"profile_harmonics must be a whole number 0..12, got {k!r}")

    def _roles(self) -> tuple[list[int], list[int], list[int]]:
        """Column indices of the HAR lags, of hour_sin/hour_cos (when both are fed), and of the trees.

        The trees never see the hour nor a slow lag (>= 12 hours): on a 7-day window a feature that moves
        once a day is a label of the day, and trees would memorise that day's volatility.
        """
        names = list(getattr(self, "feature_names_", None) or self.features)
        if getattr(self, "legacy_trees_", False):  # saved before the linear stage: trees on every column
            return [], [], list(range(len(names)))
        lags = [i for i, n in enumerate(names) if is_har_lag(n)]
        hours = [names.index(n) for n in HOUR_FEATURES] if all(n in names for n in HOUR_FEATURES) else []
        slow = [i for i in lags if lag_bars(names[i]) * self.bar_ms >= SLOW_LAG_MS]
        trees = [i for i in range(len(names)) if i not in hours and i not in slow]
        return lags, hours, trees

    def _linear_design(self, X: np.ndarray) -> np.ndarray:
        lags, hours, _ = self._roles()
        columns = [np.log(np.maximum(X[:, lags], LAG_FLOOR))] if lags else []
        if hours and self.profile_harmonics:
            # the middle of the forecast window: bars t+1..t+h, from the open of t
            shift = (1 + int(self.horizon) / 2.0) * self.bar_ms
            columns.append(fourier_terms(X[:, hours[0]], X[:, hours[1]], shift, int(self.profile_harmonics)))
        return np.column_stack(columns) if columns else np.zeros((len(X), 0))

    def _linear(self, X: np.ndarray) -> np.ndarray:
        lin = self.linear_
        design = self._linear_design(X)
        out = np.full(len(X), float(lin["intercept"]))
        if lin["coef"]:
            if "low" in lin:  # never extrapolate: each input held within the range the fit rows spanned
                design = np.clip(design, np.asarray(lin["low"]), np.asarray(lin["high"]))
            out += ((design - np.asarray(lin["mean"])) / np.asarray(lin["scale"])) @ np.asarray(lin["coef"])
        return out

    def _fit_estimator(self, X: np.ndarray, y: np.ndarray) -> None:
        self.calibration_ = {}  # the level factor of a previous fit must not leak into this one
        self.legacy_trees_ = False
        target = np.log(np.maximum(y, FLOOR))
        design = self._linear_design(X)
        if design.shape[1]:
            mean, scale = design.mean(axis=0), design.std(axis=0)
            scale = np.where(scale > 0, scale, 1.0)
            huber = HuberRegressor(epsilon=1.35, alpha=1e-4, max_iter=500)
            huber.fit((design - mean) / scale, target)
            self.linear_ = {"intercept": float(huber.intercept_), "coef": huber.coef_.tolist(),
                            "mean": mean.tolist(), "scale": scale.tolist(),
                            "low": design.min(axis=0).tolist(), "high": design.max(axis=0).tolist()}
        else:
            self.linear_ = {"intercept": float(np.median(target)), "coef": [], "mean": [], "scale": []}
        _, _, trees = self._roles()
        self.estimator_ = HistGradientBoostingRegressor(
            max_iter=self.max_iter, learning_rate=self.learning_rate,
            max_leaf_nodes=self.max_leaf_nodes, min_samples_leaf=self.min_samples_leaf, l2_regularization=1.0,
            early_stopping=False, random_state=self.seed,
        ).fit(X[:, trees], target - self._linear(X))
        self.n_iter_ = self.estimator_.n_iter_
        self.flat_trees_ = fast_trees.boosting(self.estimator_)

    def _raw(self, X: np.ndarray) -> np.ndarray:
        level = getattr(self, "calibration_", {}).get("level", 1.0)
        _, _, trees = self._roles()
        if len(X) <= fast_trees.SERVING_ROWS:  # serving: the flattened trees, the booster's arithmetic
            residual = self.flat_trees_.totals(X[:, trees])
        else:
            residual = self.estimator_.predict(X[:, trees])
        return np.exp(self._linear(X) + residual) * level

    def hits(self, y: np.ndarray, pred: np.ndarray) -> np.ndarray:
        return np.abs(np.asarray(y) / np.asarray(pred) - 1.0) <= self.band

    def _calibrate(self, y: np.ndarray, raw: np.ndarray, meta: pd.DataFrame | None) -> dict:
        level = float(np.mean(y / raw))  # Duan's smearing: mean(exp(residual of the log fit))
        pred = raw * level
        return {"method": "binned_band_coverage", "band": self.band, "level": level,
                "bins": binned_rates(np.log(pred), self.hits(y, pred))}

    def _confidence(self, pred: np.ndarray, meta: pd.DataFrame | None) -> np.ndarray:
        return binned_lookup(np.log(pred), self.calibration_["bins"])

    def _answer(self, prediction: float, confidence: float | None, context: pd.Series | None) -> dict:
        return {"predicted_volatility": prediction, "confidence": confidence}

    def _save_estimator(self, path: Path) -> dict:
        save_skops(self.estimator_, path)
        return {"linear": self.linear_}

    def _load_estimator(self, path: Path, state: dict) -> None:
        # models saved before the linear stage: trees on every feature, no linear part
        self.legacy_trees_ = "linear" not in state
        self.linear_ = state.get("linear", {"intercept": 0.0, "coef": [], "mean": [], "scale": []})
        self.estimator_ = load_skops(path, TRUSTED)
        self.n_iter_ = self.estimator_.n_iter_
        self.flat_trees_ = fast_trees.boosting(self.estimator_)
