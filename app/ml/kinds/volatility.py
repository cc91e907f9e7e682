"""Volatility: realized volatility of the next 1-4 hours. Gradient boosting on its logarithm."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingRegressor

from app.core.errors import BadInput
from app.data.frames import TIMEFRAME_MS
from app.ml import fast_trees, har, targets
from app.ml.artifacts import load_skops, save_skops
from app.ml.calibration import binned_lookup, binned_rates
from app.ml.families import RegressorModel

TRUSTED = ["sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor"]
HOUR_MS = 3_600_000
FLOOR = 1e-8  # a window without a single price change has volatility 0; its log needs a floor


def _bars_per_hour(timeframe: str) -> int:
    return max(1, HOUR_MS // TIMEFRAME_MS[timeframe])


DEFAULT_FEATURES = (
    "realized_vol_30", "realized_vol_60", "realized_vol_240", "natr_14", "range_pct", "bb_width_20",
    "volume_ratio_20", "adx_14", "returns", "returns_5",
)  # no time of day: on a 7-day window trees memorise the hour of one crash (docs/DECISIONS.md)


class VolatilityRegressor(RegressorModel):
    """HistGradientBoostingRegressor (seeded, no early stopping) on log realized volatility.

    Target: sqrt(sum of squared 1-bar log returns over the next h bars), h = 1..4 hours (default 1 h).
    exp(E[log v]) is a geometric mean, below the mean of v; one least-squares `level` factor fitted on
    the calibration slice puts the forecast back on the scale of v.
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

    def _fit_estimator(self, X: np.ndarray, y: np.ndarray) -> None:
        self.calibration_ = {}  # the level factor of a previous fit must not leak into this one
        self.estimator_ = HistGradientBoostingRegressor(
            max_iter=self.max_iter, learning_rate=self.learning_rate, max_leaf_nodes=self.max_leaf_nodes,
            min_samples_leaf=self.min_samples_leaf, l2_regularization=1.0, early_stopping=False,
            random_state=self.seed,
        ).fit(X, np.log(np.maximum(y, FLOOR)))
        self.n_iter_ = self.estimator_.n_iter_
        self.flat_trees_ = fast_trees.boosting(self.estimator_)

    def _raw(self, X: np.ndarray) -> np.ndarray:
        level = getattr(self, "calibration_", {}).get("level", 1.0)
        if len(X) <= fast_trees.SERVING_ROWS:  # serving: the flattened trees, the booster's arithmetic
            return np.exp(self.flat_trees_.totals(X)) * level
        return np.exp(self.estimator_.predict(X)) * level

    def hits(self, y: np.ndarray, pred: np.ndarray) -> np.ndarray:
        return np.abs(np.asarray(y) / np.asarray(pred) - 1.0) <= self.band

    def _calibrate(self, y: np.ndarray, raw: np.ndarray, meta: pd.DataFrame | None) -> dict:
        level = float(np.dot(y, raw) / np.dot(raw, raw))
        pred = raw * level
        return {"method": "binned_band_coverage", "band": self.band, "level": level,
                "bins": binned_rates(np.log(pred), self.hits(y, pred))}

    def _confidence(self, pred: np.ndarray, meta: pd.DataFrame | None) -> np.ndarray:
        return binned_lookup(np.log(pred), self.calibration_["bins"])

    def _answer(self, prediction: float, confidence: float | None, context: pd.Series | None) -> dict:
        return {"predicted_volatility": prediction, "confidence": confidence}

    def _save_estimator(self, path: Path) -> dict:
        save_skops(self.estimator_, path)
        return {}

    def _load_estimator(self, path: Path, state: dict) -> None:
        self.estimator_ = load_skops(path, TRUSTED)
        self.n_iter_ = self.estimator_.n_iter_
        self.flat_trees_ = fast_trees.boosting(self.estimator_)
