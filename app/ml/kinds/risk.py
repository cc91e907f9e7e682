"""Risk: how far may price stray from here over the next h bars? Random forest, answer 0..100."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.ensemble import RandomForestRegressor

from app.ml import fast_trees, targets
from app.ml.artifacts import load_skops, save_skops
from app.ml.calibration import ecdf, quantiles
from app.ml.families import RegressorModel

TRUSTED = ["sklearn.tree._tree.Tree"]
OUTCOME_QUANTILES = 1001


DEFAULT_FEATURES = (
    "natr_14", "realized_vol_30", "realized_vol_240", "range_pct", "bb_width_20", "volume_ratio_20",
    "returns", "returns_5", "adx_14",
)  # no time of day: on a 7-day window trees memorise the hour of one crash (docs/DECISIONS.md)


class RiskScorer(RegressorModel):
    """Random forest (seed defaults: 100 trees, depth 10; half the features per split, one thread) on
    the largest excursion max(|high - close_t|, |low - close_t|) / close_t, t+1..t+h.

    The answer is an integer 0..100: the percentile of the predicted excursion among the TRAIN rows'
    realized excursions (1001 quantiles in `calibration_['labels']['outcomes']`), so 80 means "a larger
    move than 80% of what happened in training". It states no confidence (DESIGN 4: an integer only).
    """

    kind = "risk"
    model_type = "random_forest"
    artifact_file = "model.skops"
    rows_independent = True
    baseline_names = ("persistence", "train_mean")
    description = "Scores 0-100 how large the next h candles' price excursion will be vs training history"
    default_features = DEFAULT_FEATURES

    def __init__(
        self,
        n_estimators: int = 100,
        max_depth: int = 10,
        min_samples_leaf: int = 5,
        max_features: float = 0.5,
        *,
        features: Sequence[str] = DEFAULT_FEATURES,
        horizon: int = 5,
        timeframe: str = "1m",
        seed: int = 42,
        train_ratio: float = 0.8,
        calibration_ratio: float = 0.2,
    ) -> None:
        self.n_estimators = n_estimators
        self.max_depth = max_depth
        self.min_samples_leaf = min_samples_leaf
        self.max_features = max_features
        super().__init__(
            features=features, horizon=horizon, timeframe=timeframe, seed=seed, train_ratio=train_ratio,
            calibration_ratio=calibration_ratio,
        )

    def target(self, candles: pd.DataFrame) -> pd.Series:
        return targets.risk(candles, int(self.horizon))

    def _fit_estimator(self, X: np.ndarray, y: np.ndarray) -> None:
        self.estimator_ = RandomForestRegressor(
            n_estimators=self.n_estimators, max_depth=self.max_depth, min_samples_leaf=self.min_samples_leaf,
            max_features=self.max_features, n_jobs=1, random_state=self.seed,
        ).fit(X, y)
        self.flat_trees_ = fast_trees.forest(self.estimator_)

    def _raw(self, X: np.ndarray) -> np.ndarray:
        if len(X) <= fast_trees.SERVING_ROWS:  # serving: the flattened trees, the forest's arithmetic
            return self.flat_trees_.totals(X) / len(self.estimator_.estimators_)
        return self.estimator_.predict(X)

    def _label_stats(self, y: np.ndarray, meta: pd.DataFrame | None) -> dict:
        return {**super()._label_stats(y, meta), "outcomes": quantiles(y, OUTCOME_QUANTILES)}

    def _calibrate(self, y: np.ndarray, raw: np.ndarray, meta: pd.DataFrame | None) -> dict:
        return {}

    def _confidence(self, pred: np.ndarray, meta: pd.DataFrame | None) -> None:
        return None

    def risk_score(self, excursion: np.ndarray) -> np.ndarray:
        """Percentile (int 0..100) of excursions among the training outcomes (`score` is sklearn's R²)."""
        return np.rint(100.0 * ecdf(excursion, self.calibration_["labels"]["outcomes"])).astype("int64")

    def _answer(self, prediction: float, confidence: float | None, context: pd.Series | None) -> int:
        return int(self.risk_score(np.array([prediction]))[0])

    def _save_estimator(self, path: Path) -> dict:
        save_skops(self.estimator_, path)
        return {}

    def _load_estimator(self, path: Path, state: dict) -> None:
        self.estimator_ = load_skops(path, TRUSTED)
        self.flat_trees_ = fast_trees.forest(self.estimator_)
