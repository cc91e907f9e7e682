"""Holdout metrics: classification and regression scores, skill over a baseline, reliability tables."""

from __future__ import annotations

import numpy as np
from scipy.stats import rankdata

CONFIDENCE_EDGES = np.round(np.arange(0.5, 1.0001, 0.05), 2)  # a classifier states >= 0.5
COVERAGE_EDGES = np.round(np.linspace(0.0, 1.0, 11), 2)


def classification(y: np.ndarray, pred: np.ndarray, p1: np.ndarray) -> dict:
    """Scores of the positive class (UP, accelerating), from one confusion matrix.

    Same numbers as scikit-learn's scorers (a test checks), without their per-call input validation, which
    cost more than the rest of a fast model's validation put together.
    """
    y, pred = np.asarray(y).astype(bool), np.asarray(pred).astype(bool)
    tp, fp, fn = int(np.sum(y & pred)), int(np.sum(~y & pred)), int(np.sum(y & ~pred))
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    positives = int(y.sum())
    both = 0 < positives < len(y)
    return {
        "accuracy": float(np.mean(y == pred)) if len(y) else 0.0,
        "precision": float(precision),
        "recall": float(recall),
        "f1": float(2 * tp / (2 * tp + fp + fn)) if tp + fp + fn else 0.0,
        "roc_auc": _roc_auc(y, np.asarray(p1, dtype="float64"), positives) if both else None,
    }


def _roc_auc(y: np.ndarray, score: np.ndarray, positives: int) -> float:
    """Mann-Whitney U / (n+ n-): the probability a random UP row scores above a random DOWN row (ties 1/2)."""
    ranks = rankdata(score)
    negatives = len(y) - positives
    return float((ranks[y].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def regression(y: np.ndarray, pred: np.ndarray) -> dict:
    y, pred = np.asarray(y, dtype="float64"), np.asarray(pred, dtype="float64")
    err = y - pred
    total = float(np.sum((y - y.mean()) ** 2)) if len(y) else 0.0
    return {
        "rmse": float(np.sqrt(np.mean(err**2))),
        "mae": float(np.mean(np.abs(err))),
        "r2": float(1.0 - np.sum(err**2) / total) if len(y) > 1 and total > 0 else None,
    }


def classifier_skill(accuracy: float, baseline_accuracy: float) -> float:
    """(acc - acc_b) / (1 - acc_b): the share of the baseline's errors the model removes (DESIGN 5)."""
    return float((accuracy - baseline_accuracy) / (1.0 - baseline_accuracy)) if baseline_accuracy < 1 else 0.0


def regressor_skill(rmse: float, baseline_rmse: float) -> float:
    """1 - RMSE / RMSE_b (DESIGN 5)."""
    return float(1.0 - rmse / baseline_rmse) if baseline_rmse > 0 else 0.0


def reliability_table(stated: np.ndarray, hit: np.ndarray, edges: np.ndarray) -> dict:
    """Per bin of stated confidence: rows, mean stated, observed frequency of the event.

    `weighted_gap` is the row-weighted mean |stated - observed| over bins (expected calibration error);
    a calibrated model has it near 0, within sampling noise of the bin counts.
    """
    stated = np.asarray(stated, dtype="float64")
    hit = np.asarray(hit, dtype="float64")
    which = np.clip(np.searchsorted(edges, stated, side="right") - 1, 0, len(edges) - 2)
    bins, gap = [], 0.0
    for b in range(len(edges) - 1):
        mask = which == b
        count = int(mask.sum())
        if not count:
            continue
        s, o = float(stated[mask].mean()), float(hit[mask].mean())
        gap += count * abs(s - o)
        bins.append(
            {"lo": float(edges[b]), "hi": float(edges[b + 1]), "count": count, "stated": s, "observed": o}
        )
    n = len(stated)
    return {
        "bins": bins,
        "stated_mean": float(stated.mean()) if n else None,
        "observed_rate": float(hit.mean()) if n else None,
        "weighted_gap": float(gap / n) if n else None,
        "rows": n,
    }
