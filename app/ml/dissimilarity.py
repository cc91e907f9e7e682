"""Out-of-distribution check per prediction: FreqAI's dissimilarity index (DI).

DI = (distance of the standardised input to its nearest training sample) / (mean pairwise distance of the
training samples). A stored, bounded subsample of the standardised training rows stands for the training
set, so the check costs one small distance computation at serving time. The flag threshold is not a
constant picked by hand: it is the 99th percentile of the DI each training sample gets against the others
(leave-one-out), so "out of distribution" means "further from the training data than 99% of it was".
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

REFERENCE_KEY = "dissimilarity"
DEFAULT_MAX_ROWS = 400
DEFAULT_QUANTILE = 0.99


def fit_reference(
    X: pd.DataFrame,
    *,
    max_rows: int = DEFAULT_MAX_ROWS,
    quantile: float = DEFAULT_QUANTILE,
    seed: int = 0,
) -> dict[str, Any]:
    """The JSON-able reference a model keeps (in its config) to score how unusual a later input is.

    Call it with the rows the model was FITTED on (never the holdout), after fitting.
    """
    frame = X.astype("float64")
    values = frame.to_numpy()
    values = values[np.isfinite(values).all(axis=1)]
    if len(values) < 3:
        raise ValueError("need at least 3 finite training rows to build a dissimilarity reference")
    mean = values.mean(axis=0)
    std = values.std(axis=0)
    std[~(std > 0)] = 1.0
    rng = np.random.default_rng(seed)
    take = np.sort(rng.choice(len(values), size=min(max_rows, len(values)), replace=False))
    sample = (values[take] - mean) / std
    dist = _pairwise(sample)
    upper = dist[np.triu_indices(len(sample), k=1)]
    avg = float(upper.mean()) or 1.0
    np.fill_diagonal(dist, np.inf)
    loo = dist.min(axis=1) / avg
    return {
        "features": [str(c) for c in frame.columns],
        "mean": mean.tolist(),
        "std": std.tolist(),
        "sample": np.round(sample, 6).tolist(),
        "avg_distance": avg,
        "threshold": float(np.quantile(loo, quantile)),
        "quantile": quantile,
    }


def _pairwise(a: np.ndarray) -> np.ndarray:
    sq = (a * a).sum(axis=1)
    d2 = sq[:, None] + sq[None, :] - 2.0 * a @ a.T
    return np.sqrt(np.clip(d2, 0.0, None))


class DissimilarityIndex:
    """A loaded reference, with arrays prepared once so each check is one vectorised pass."""

    def __init__(self, reference: dict[str, Any]) -> None:
        self.features: list[str] = list(reference["features"])
        self.mean = np.asarray(reference["mean"], dtype="float64")
        self.std = np.asarray(reference["std"], dtype="float64")
        self.sample = np.asarray(reference["sample"], dtype="float64")
        self.avg_distance = float(reference["avg_distance"])
        self.threshold = float(reference["threshold"])

    def index(self, values: np.ndarray) -> float:
        """DI of one input row given in `self.features` order (NaN when the row has non-finite values)."""
        row = np.asarray(values, dtype="float64").reshape(-1)
        if not np.isfinite(row).all():
            return float("nan")
        z = (row - self.mean) / self.std
        nearest = float(np.sqrt(((self.sample - z) ** 2).sum(axis=1)).min())
        return nearest / self.avg_distance

    def check(self, values: np.ndarray) -> tuple[float, bool]:
        di = self.index(values)
        return di, bool(not np.isfinite(di) or di > self.threshold)


def attach_reference(model: Any, X_train: pd.DataFrame, **kwargs: Any) -> dict[str, Any]:
    """Store the reference in `model.calibration_` (saved in config.json by the model's save_artifacts).

    The training pipeline calls this right after `fit`, with the fitted rows in the model's feature order.
    """
    columns = list(getattr(model, "feature_names_", None) or X_train.columns)
    reference = fit_reference(X_train[columns], **kwargs)
    calibration = getattr(model, "calibration_", None)
    if not isinstance(calibration, dict):
        calibration = {}
        model.calibration_ = calibration
    calibration[REFERENCE_KEY] = reference
    return reference


def reference_of(model: Any) -> DissimilarityIndex | None:
    """The model's reference, if it was trained with one (older models answer without a DI)."""
    for holder in (getattr(model, "calibration_", None), getattr(model, "dissimilarity_", None)):
        if isinstance(holder, dict):
            ref = holder.get(REFERENCE_KEY, holder if "sample" in holder else None)
            if isinstance(ref, dict) and "sample" in ref:
                return DissimilarityIndex(ref)
    return None
