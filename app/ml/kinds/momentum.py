"""Momentum: will m = close[t]/close[t-n] - 1 move further in its own direction over the next h bars?"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.kernel_approximation import Nystroem
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import LinearSVC
from sklearn.utils.extmath import row_norms

from app.core.errors import BadInput
from app.ml import targets
from app.ml.artifacts import load_skops, save_skops
from app.ml.families import ClassifierModel

TRUSTED: list[str] = []  # StandardScaler, Nystroem, LinearSVC and Pipeline are all in skops' safe set


DEFAULT_FEATURES = (
    "returns", "returns_5", "returns_15", "rsi_14", "adx_14", "macd_histogram_pct",
    "close_zscore_20", "natr_14", "realized_vol_30", "volume_ratio_20",
)


class MomentumClassifier(ClassifierModel):
    """An RBF-kernel SVM that scales: StandardScaler -> Nystroem RBF features -> LinearSVC (primal).

    The Nystroem map approximates the RBF kernel with `n_components` landmark columns, so the cost grows
    linearly with rows (a week of 1m bars x 3 symbols, ~30k rows, fits in seconds) where a kernel SVC
    grows quadratically. The scaler is fitted on the fit rows only, as part of the pipeline.
    Confidence: Platt-calibrated probability (from the SVM's decision function) of the answered state.
    `momentum_window` n defaults to the horizon: with n <= h, m[t+h] depends only on bars after t.
    """

    kind = "momentum"
    model_type = "svm"
    artifact_file = "model.skops"
    labels = ("decelerating", "accelerating")
    answer_key = "state"
    description = "Classifies whether momentum (close/close[n bars ago] - 1) is accelerating or decelerating"
    default_features = DEFAULT_FEATURES

    def __init__(
        self,
        C: float = 0.1,
        n_components: int = 300,
        momentum_window: int | None = None,
        *,
        features: Sequence[str] = DEFAULT_FEATURES,
        horizon: int = 10,
        timeframe: str = "1m",
        seed: int = 42,
        train_ratio: float = 0.8,
        calibration_ratio: float = 0.2,
    ) -> None:
        self.C = C
        self.n_components = n_components
        self.momentum_window = momentum_window
        super().__init__(
            features=features, horizon=horizon, timeframe=timeframe, seed=seed, train_ratio=train_ratio,
            calibration_ratio=calibration_ratio,
        )

    def _check_own_params(self) -> None:
        if self.momentum_window is not None and not (
            isinstance(self.momentum_window, int) and self.momentum_window >= 1
        ):
            raise BadInput(f"momentum_window must be a whole number >= 1, got {self.momentum_window!r}")

    @classmethod
    def default_horizon(cls, timeframe: str) -> int:
        return 10

    def target(self, candles: pd.DataFrame) -> pd.Series:
        return targets.momentum(candles, int(self.horizon), self.momentum_window or int(self.horizon))

    def _fit_estimator(self, X: np.ndarray, y: np.ndarray) -> None:
        components = min(self.n_components, len(X))
        self.estimator_ = Pipeline([
            ("scale", StandardScaler()),
            ("rbf", Nystroem(kernel="rbf", n_components=components, random_state=self.seed)),
            ("svm", LinearSVC(C=self.C, dual=False, max_iter=5000, random_state=self.seed)),
        ]).fit(X, y.astype("int64"))
        self.serving_ = _serving_arrays(self.estimator_)

    def _raw(self, X: np.ndarray) -> np.ndarray:
        if len(X) == 1:  # serving: the pipeline's arithmetic on arrays, without its per-step checks
            return _decision(self.serving_, X)
        return self.estimator_.decision_function(X)

    def _save_estimator(self, path: Path) -> dict:
        save_skops(self.estimator_, path)
        return {}

    def _load_estimator(self, path: Path, state: dict) -> None:
        self.estimator_ = load_skops(path, TRUSTED)
        self.serving_ = _serving_arrays(self.estimator_)


def _serving_arrays(pipeline: Pipeline) -> dict[str, np.ndarray | float | None]:
    scale, rbf, svm = (pipeline.named_steps[k] for k in ("scale", "rbf", "svm"))
    components = np.asarray(rbf.components_, dtype="float64")
    return {
        "mean": scale.mean_, "scale": scale.scale_, "components_T": components.T,
        "components_sq": row_norms(components, squared=True)[None, :], "gamma": rbf.gamma,
        "normalization_T": rbf.normalization_.T, "coef_T": svm.coef_.T, "intercept": svm.intercept_,
    }


def _decision(a: dict[str, Any], X: np.ndarray) -> np.ndarray:
    """StandardScaler -> Nystroem (rbf_kernel via squared euclidean distances) -> LinearSVC, step for step
    as scikit-learn computes them (same operations in the same order: the same bits)."""
    z = (X - a["mean"]) / a["scale"]
    gamma = a["gamma"] if a["gamma"] is not None else 1.0 / z.shape[1]
    k = -2 * (z @ a["components_T"])
    k += row_norms(z, squared=True)[:, None]
    k += a["components_sq"]
    np.maximum(k, 0, out=k)
    k *= -gamma
    np.exp(k, out=k)
    scores = (k @ a["normalization_T"]) @ a["coef_T"] + a["intercept"]
    return scores.reshape(-1)
