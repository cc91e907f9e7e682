"""Volatility: realized volatility of the next 1-4 hours. HAR + time-of-day profile, then boosted trees.

Two stages on log realized volatility, both fitted on the fit rows only:

1. a robust linear HAR stage (Huber regression): log RV[t, t+h] on the logs of the model's trailing
   realized-volatility features (`realized_vol_<n>`: with n = 60, 240, 1440 the HAR lags of 1 hour, 4 hours
   and 1 day at 1m scale) and the time-of-day profile over the forecast window, read from the `hour_sin` /
   `hour_cos` features (serving needs nothing else). The profile (`tod_profile`) is the median, over every
   symbol-day of the `profile_days` (28) days before the train labels' end, of the day-demeaned log hourly
   realized variance, smoothed to K = `profile_harmonics` (1) cos/sin pairs: the build loads those days
   before the window, and the profile is stored with the model; one coefficient scales it. The HAR lags
   are not clipped to the fit rows' range (a new high after a crash is forecast by the HAR line). Without
   that history (a model fitted directly, fewer than 3 complete symbol-days) the profile is the
   Andersen-Bollerslev Fourier flexible form of the window's fit rows, K = `profile_harmonics` cos/sin
   pairs. Neither can memorise the hour of one crash as trees on the raw hour did (docs/DECISIONS.md);
2. gradient-boosted trees on the linear stage's residual, from the other features (never the raw hour),
   served only when they lower QLIKE out of fold (`trees_gate`): else the linear stage alone.

The forecast is exp(stage 1 [+ stage 2]) times the bias correction of the log target on the variance
scale (`variance_level`: sqrt(mean((v / exp(fit))^2)) on the out-of-fold and calibration rows), so its
square estimates the variance, the quantity QLIKE scores.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.linear_model import HuberRegressor

from app.core.errors import BadInput
from app.data.frames import TIMEFRAME_MS, index_ms
from app.ml import fast_trees, har, intervals, losses, targets
from app.ml.artifacts import load_skops, save_skops
from app.ml.calibration import binned_lookup, binned_rates
from app.ml.families import RegressorModel
from app.ml.splits import forward_blocks

TRUSTED = ["sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor"]
HOUR_MS = 3_600_000
DAY_MS = 86_400_000
FLOOR = 1e-8  # a window without a single price change has volatility 0; its log needs a floor
LAG_FLOOR = 1e-6  # trailing 1-bar volatility below this (a frozen market) counts as this in the HAR stage
HOUR_FEATURES = ("hour_sin", "hour_cos")
SLOW_LAG_MS = 12 * HOUR_MS  # a trailing volatility over this long or more feeds the linear stage only
GATE_FOLDS = 2  # forward folds inside the fit rows whose out-of-fold forecasts decide the trees and level
MIN_FOLD_ROWS = 500  # a fold's stages need at least this many rows before its block
GATE_REPS = 499  # block-bootstrap replicates behind the trees' out-of-fold QLIKE gain interval
MIN_PROFILE_DAYS = 3  # complete symbol-days a long-history profile needs; fewer: the window's Fourier form
PROFILE_POINTS = 12  # clock times averaged over the forecast window when reading the profile


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
    exp(E[log v]) is a geometric mean, below the mean of v and of v^2; `level` = `variance_level` of the
    out-of-fold and calibration residuals (GATE_FOLDS forward folds inside the fit rows, each forecast by
    stages fitted before it, plus the calibration slice forecast by the final stages) puts exp(fit)^2 on
    the scale of v^2. The same rows decide the trees (`trees_gate`). Without `realized_vol_<n>` features
    the linear stage has no lags; without `hour_sin` and `hour_cos` it has no profile.
    Confidence: the probability that the realized volatility falls within +/-`band` (default 25%) of the
    prediction. On the calibration slice, rows are put in 5 quantile bins of the predicted volatility and
    each bin's frequency of landing inside the band is kept (Laplace-smoothed); a prediction states its
    bin's frequency. Validation reports stated vs observed band coverage on the holdout.
    """

    kind = "volatility"
    fit_scratch = ("_oof", "_pending_stages", "_cal_stages")
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
        profile_days: int = 28,
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
        self.profile_days = profile_days
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
        d = self.profile_days
        if isinstance(d, bool) or not isinstance(d, int) or not 0 <= d <= 365:
            raise BadInput(f"profile_days must be a whole number of days 0..365, got {d!r}")

    def history_days(self) -> float:
        uses_hour = all(n in (getattr(self, "feature_names_", None) or self.features) for n in HOUR_FEATURES)
        return float(self.profile_days) if uses_hour else 0.0

    def use_history(self, history: Mapping[str, pd.DataFrame], window: Mapping[str, pd.DataFrame],
                    before_ms: int) -> None:
        """The time-of-day profile from the `profile_days` days of candles before `before_ms` (the train
        labels' end): the history loaded before the window, then the window's own; symbols pooled."""
        frames = {}
        for symbol, candles in window.items():
            past = history.get(symbol)
            joined = candles if past is None or past.empty else pd.concat([past, candles])
            joined = joined[~joined.index.duplicated(keep="last")].sort_index()
            stamps = index_ms(joined.index)
            frames[symbol] = joined[(stamps < before_ms) & (stamps >= before_ms - self.profile_days * DAY_MS)]
        self.history_profile_ = tod_profile(frames, self.bar_ms, int(self.profile_harmonics))

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
        profile = getattr(self, "history_profile_", None)
        if hours and profile and self.profile_harmonics:  # the long-history profile over the window
            columns.append(profile_over_window(profile["hours"], X[:, hours[0]], X[:, hours[1]],
                                               int(self.horizon), self.bar_ms)[:, None])
        elif hours and self.profile_harmonics:
            # the middle of the forecast window: bars t+1..t+h, from the open of t
            shift = (1 + int(self.horizon) / 2.0) * self.bar_ms
            columns.append(fourier_terms(X[:, hours[0]], X[:, hours[1]], shift, int(self.profile_harmonics)))
        return np.column_stack(columns) if columns else np.zeros((len(X), 0))

    def _linear(self, X: np.ndarray, lin: dict | None = None) -> np.ndarray:
        lin = self.linear_ if lin is None else lin
        design = self._linear_design(X)
        out = np.full(len(X), float(lin["intercept"]))
        if lin["coef"]:
            if "low" in lin:  # the profile held within the range the fit rows spanned, the HAR lags not:
                # log RV is linear in log lags, and a clip would under-forecast the new highs after a crash
                n_lags = len(self._roles()[0])
                design = design.copy()
                design[:, n_lags:] = np.clip(design[:, n_lags:], np.asarray(lin["low"])[n_lags:],
                                             np.asarray(lin["high"])[n_lags:])
            out += ((design - np.asarray(lin["mean"])) / np.asarray(lin["scale"])) @ np.asarray(lin["coef"])
        return out

    def _fit_linear(self, X: np.ndarray, target: np.ndarray) -> dict:
        design = self._linear_design(X)
        if not design.shape[1]:
            return {"intercept": float(np.median(target)), "coef": [], "mean": [], "scale": []}
        mean, scale = design.mean(axis=0), design.std(axis=0)
        scale = np.where(scale > 0, scale, 1.0)
        huber = HuberRegressor(epsilon=1.35, alpha=1e-4, max_iter=500)
        huber.fit((design - mean) / scale, target)
        return {"intercept": float(huber.intercept_), "coef": huber.coef_.tolist(),
                "mean": mean.tolist(), "scale": scale.tolist(),
                "low": design.min(axis=0).tolist(), "high": design.max(axis=0).tolist()}

    def _fit_trees(self, X: np.ndarray, residual: np.ndarray) -> HistGradientBoostingRegressor:
        _, _, trees = self._roles()
        return HistGradientBoostingRegressor(
            max_iter=self.max_iter, learning_rate=self.learning_rate,
            max_leaf_nodes=self.max_leaf_nodes, min_samples_leaf=self.min_samples_leaf, l2_regularization=1.0,
            early_stopping=False, random_state=self.seed,
        ).fit(X[:, trees], residual)

    def _fit_estimator(self, X: np.ndarray, y: np.ndarray) -> None:
        self.calibration_ = {}  # the level factor of a previous fit must not leak into this one
        self.legacy_trees_ = False
        self.trees_ = True  # until the out-of-fold gate decides (_calibrate)
        target = np.log(np.maximum(y, FLOOR))
        self._oof = self._out_of_fold(X, target)
        self.linear_ = self._fit_linear(X, target)
        self.estimator_ = self._fit_trees(X, target - self._linear(X))
        self.n_iter_ = self.estimator_.n_iter_
        self.flat_trees_ = fast_trees.boosting(self.estimator_)
        self._pending_stages = True  # BaseModel.fit's next _raw call is the calibration slice's

    def _out_of_fold(self, X: np.ndarray, target: np.ndarray) -> dict[str, np.ndarray]:
        """Forward folds inside the fit rows: each later block forecast by stages fitted before it
        (embargoed by h bars): the linear stage's log forecast, with and without the trees."""
        ts = self._fit_times_of(len(target))
        if ts is None:
            ts = np.arange(len(target), dtype="int64") * self.bar_ms
        _, _, trees = self._roles()
        parts: list[tuple[np.ndarray, ...]] = []
        for train, block in forward_blocks(ts, int(self.horizon), self.bar_ms, GATE_FOLDS, MIN_FOLD_ROWS):
            lin = self._fit_linear(X[train], target[train])
            resid = target[train] - self._linear(X[train], lin)
            booster = self._fit_trees(X[train], resid)
            linear = self._linear(X[block], lin)
            parts.append((linear, linear + booster.predict(X[block][:, trees]), target[block], ts[block]))
        names = ("linear", "full", "log_y", "ts")
        if not parts:
            return {n: np.zeros(0, dtype="int64" if n == "ts" else "float64") for n in names}
        return {n: np.concatenate(c) for n, c in zip(names, zip(*parts, strict=True), strict=True)}

    def _raw(self, X: np.ndarray) -> np.ndarray:
        level = getattr(self, "calibration_", {}).get("level", 1.0)
        linear = self._linear(X)
        if not getattr(self, "trees_", True):  # the gate found no out-of-fold gain: the linear stage alone
            residual = np.zeros(len(X))
        else:
            _, _, trees = self._roles()
            if len(X) <= fast_trees.SERVING_ROWS:  # serving: the flattened trees, the booster's arithmetic
                residual = self.flat_trees_.totals(X[:, trees])
            else:
                residual = self.estimator_.predict(X[:, trees])
        if getattr(self, "_pending_stages", False):
            self._pending_stages = False
            self._cal_stages = (linear, residual)
        return np.exp(linear + residual) * level

    def hits(self, y: np.ndarray, pred: np.ndarray) -> np.ndarray:
        return np.abs(np.asarray(y) / np.asarray(pred) - 1.0) <= self.band

    def _calibrate(self, y: np.ndarray, raw: np.ndarray, meta: pd.DataFrame | None) -> dict:
        oof = getattr(self, "_oof", None)
        if oof is None:
            oof = {n: np.zeros(0, dtype="int64" if n == "ts" else "float64")
                   for n in ("linear", "full", "log_y", "ts")}
        linear, residual = getattr(self, "_cal_stages", (np.log(raw), np.zeros(len(raw))))
        if meta is not None:
            cal_ts = meta["ts_ms"].to_numpy(dtype="int64")
        else:
            start = int(oof["ts"].max()) + 1 if len(oof["ts"]) else 0
            cal_ts = start + np.arange(len(y), dtype="int64") * self.bar_ms
        gate = trees_gate(
            np.exp(np.concatenate([oof["log_y"], np.log(np.maximum(y, FLOOR))])),
            np.exp(np.concatenate([oof["linear"], linear])),
            np.exp(np.concatenate([oof["full"], linear + residual])),
            np.concatenate([oof["ts"], cal_ts]), int(self.horizon), self.seed,
        )
        self.trees_ = gate["trees"]
        level = gate["level_full"] if self.trees_ else gate["level_linear"]
        pred = np.exp(linear + (residual if self.trees_ else 0.0)) * level
        return {"method": "binned_band_coverage", "band": self.band, "level": level, "trees": self.trees_,
                "trees_gain": gate["gain"], "trees_gain_interval": gate["interval"],
                "gate_rows": gate["rows"],
                "bins": binned_rates(np.log(pred), self.hits(y, pred))}

    def _confidence(self, pred: np.ndarray, meta: pd.DataFrame | None) -> np.ndarray:
        return binned_lookup(np.log(pred), self.calibration_["bins"])

    def _answer(self, prediction: float, confidence: float | None, context: pd.Series | None) -> dict:
        return {"predicted_volatility": prediction, "confidence": confidence}

    def _save_estimator(self, path: Path) -> dict:
        save_skops(self.estimator_, path)
        return {"linear": self.linear_, "trees": bool(getattr(self, "trees_", True)),
                "history_profile": getattr(self, "history_profile_", None)}

    def _load_estimator(self, path: Path, state: dict) -> None:
        # models saved before the linear stage: trees on every feature, no linear part
        self.legacy_trees_ = "linear" not in state
        self.linear_ = state.get("linear", {"intercept": 0.0, "coef": [], "mean": [], "scale": []})
        self.trees_ = bool(state.get("trees", True))  # saved before the gate: the trees always served
        self.history_profile_ = state.get("history_profile")  # saved before it: the Fourier form
        self.estimator_ = load_skops(path, TRUSTED)
        self.n_iter_ = self.estimator_.n_iter_
        self.flat_trees_ = fast_trees.boosting(self.estimator_)


def variance_level(y: np.ndarray, raw: np.ndarray) -> float:
    """The bias correction of a log fit on the variance scale: sqrt(mean((y / raw)^2)).

    exp(E[log v]) is a geometric mean; E[v^2 | x] = raw^2 E[(v / raw)^2] (Duan's smearing applied to the
    variance, with no assumption on the residuals' law), so this factor makes the forecast's square the
    variance forecast, and it is the multiple of raw that minimises QLIKE (on variances) on these rows.
    Estimated on the out-of-fold and calibration rows together (days, not the calibration day alone)."""
    ratio = np.asarray(y, dtype="float64") / np.asarray(raw, dtype="float64")
    ratio = ratio[np.isfinite(ratio)]
    return float(np.sqrt(np.mean(ratio * ratio))) if len(ratio) else 1.0


def trees_gate(
    y: np.ndarray, linear: np.ndarray, full: np.ndarray, ts_ms: np.ndarray, horizon: int, seed: int = 0
) -> dict[str, Any]:
    """Do the residual trees lower QLIKE out of fold? The gain is mean(QLIKE linear - QLIKE full), each
    form scaled by its own variance-scale level, with a 95% block-bootstrap interval over time (blocks
    >= h bars, all symbols at one instant together, app.ml.intervals). The trees are kept only when the
    interval's lower end is above 0."""
    y, linear, full = (np.asarray(a, dtype="float64") for a in (y, linear, full))
    level_linear, level_full = variance_level(y, linear), variance_level(y, full)
    out: dict[str, Any] = {"level_linear": level_linear, "level_full": level_full, "gain": 0.0,
                           "interval": None, "trees": False, "rows": len(y)}
    if len(y) == 0:
        return out
    d = losses.qlike(y, linear * level_linear) - losses.qlike(y, full * level_full)
    axis = intervals.time_axis(ts_ms)
    sums = axis.sums(np.column_stack([d, np.ones(len(d))]))
    block = intervals.block_length(axis.means(d), horizon)
    totals = intervals.resampler(axis.n_times, block, GATE_REPS, seed).replicate(sums)
    with np.errstate(divide="ignore", invalid="ignore"):
        interval = intervals.percentile_interval(totals[:, 0] / totals[:, 1])
    out.update(gain=float(np.mean(d)), interval=interval, trees=interval is not None and interval[0] > 0.0)
    return out


def tod_profile(
    candles_by_symbol: Mapping[str, pd.DataFrame], bar_ms: int, harmonics: int = 0
) -> dict[str, Any] | None:
    """Robust intraday profile of log volatility by UTC hour (Andersen-Bollerslev's seasonal factor).

    Per symbol and UTC day with all 24 hours covered (>= 80% of an hour's bars each), the log of each hour's
    realized variance minus that day's mean over its hours (the day's level removed); the profile of hour j
    is half (variance -> volatility) the median over every symbol-day, centred to mean 0. The median keeps
    one crash hour from setting the profile. With `harmonics` K > 0 the 24 medians are smoothed to their
    least-squares fit by K cos/sin pairs of the hour's angle (the smooth form the window's Fourier profile
    has). None when fewer than MIN_PROFILE_DAYS symbol-days are complete.
    """
    per_hour = max(1, HOUR_MS // bar_ms)
    days = []
    for candles in candles_by_symbol.values():
        if len(candles) < 2:
            continue
        stamps = index_ms(candles.index)
        r2 = np.log(candles["close"].to_numpy(dtype="float64"))
        r2 = np.r_[np.nan, np.diff(r2)] ** 2
        frame = pd.DataFrame({"day": stamps // DAY_MS, "hour": (stamps % DAY_MS) // HOUR_MS, "r2": r2})
        frame = frame.dropna()
        hourly = frame.groupby(["day", "hour"])["r2"].agg(["sum", "count"])
        hourly = hourly[hourly["count"] >= 0.8 * per_hour]
        logs = np.log(np.maximum(hourly["sum"], FLOOR * FLOOR)).unstack("hour").reindex(columns=range(24))
        logs = logs.dropna()
        if len(logs):
            days.append(logs.to_numpy() - logs.to_numpy().mean(axis=1, keepdims=True))
    rows = np.concatenate(days) if days else np.zeros((0, 24))
    if len(rows) < MIN_PROFILE_DAYS:
        return None
    profile = 0.5 * np.median(rows, axis=0)
    if harmonics:
        angle = 2.0 * np.pi * (np.arange(24) + 0.5) / 24.0
        k = np.arange(1, harmonics + 1)
        basis = np.column_stack([np.ones(24), np.cos(np.outer(angle, k)), np.sin(np.outer(angle, k))])
        profile = basis @ np.linalg.lstsq(basis, profile, rcond=None)[0]
    return {"hours": (profile - profile.mean()).tolist(), "days": int(len(rows)), "harmonics": int(harmonics)}


def profile_over_window(hours: Sequence[float], hour_sin: np.ndarray, hour_cos: np.ndarray, horizon: int,
                        bar_ms: int) -> np.ndarray:
    """The hourly log-volatility profile over bars t+1..t+h: 0.5 log mean(exp(2 p)) of the profile read
    (linearly between hour centres, around the clock) at up to PROFILE_POINTS bar middles of the window."""
    p = np.asarray(hours, dtype="float64")
    clock = (np.arctan2(hour_sin, hour_cos) % (2.0 * np.pi)) / (2.0 * np.pi) * DAY_MS
    offsets = (np.linspace(1.0, float(horizon), min(int(horizon), PROFILE_POINTS)) + 0.5) * bar_ms
    x = (((clock[:, None] + offsets[None, :]) % DAY_MS) / HOUR_MS - 0.5) % 24.0
    j = np.floor(x).astype("int64")
    w = x - j
    values = p[j % 24] * (1.0 - w) + p[(j + 1) % 24] * w
    return 0.5 * np.log(np.mean(np.exp(2.0 * values), axis=1))
