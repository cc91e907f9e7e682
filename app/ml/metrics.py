"""Holdout metrics: classification and regression scores, skill over a baseline, reliability tables."""

from __future__ import annotations

import numpy as np
from sklearn import metrics as skm

CONFIDENCE_EDGES = np.round(np.arange(0.5, 1.0001, 0.05), 2)  # a classifier states >= 0.5
COVERAGE_EDGES = np.round(np.linspace(0.0, 1.0, 11), 2)


def classification(y: np.ndarray, pred: np.ndarray, p1: np.ndarray) -> dict:
    y, pred = np.asarray(y).astype(int), np.asarray(pred).astype(int)
    both = len(np.unique(y)) == 2
    return {
        "accuracy": float(skm.accuracy_score(y, pred)),
        "precision": float(skm.precision_score(y, pred, zero_division=0)),
        "recall": float(skm.recall_score(y, pred, zero_division=0)),
        "f1": float(skm.f1_score(y, pred, zero_division=0)),
        "roc_auc": float(skm.roc_auc_score(y, p1)) if both else None,
    }


def regression(y: np.ndarray, pred: np.ndarray) -> dict:
    return {
        "rmse": float(np.sqrt(skm.mean_squared_error(y, pred))),
        "mae": float(skm.mean_absolute_error(y, pred)),
        "r2": float(skm.r2_score(y, pred)) if len(y) > 1 else None,
    }


def classifier_skill(accuracy: float, baseline_accuracy: float) -> float:
    """(acc - acc_b) / (1 - acc_b): the share of the baseline's errors the model removes (DESIGN 5)."""
    return float((accuracy - baseline_accuracy) / (1.0 - baseline_accuracy)) if baseline_accuracy < 1 else 0.0


def regressor_skill(rmse: float, baseline_rmse: float) -> float:
    """1 - RMSE / RMSE_b (DESIGN 5)."""
    return float(1.0 - rmse / baseline_rmse) if baseline_rmse > 0 else 0.0


def loss_difference_tstat(loss_baseline: np.ndarray, loss_model: np.ndarray, block: int) -> float:
    """t statistic of mean(loss_b - loss_m) using means of consecutive blocks of `block` rows.

    Overlapping h-bar labels make neighbouring rows dependent; block means of at least h rows are close
    to independent, so |t| > 2 is a real difference and not label overlap (a Diebold-Mariano-style test).
    """
    d = np.asarray(loss_baseline, dtype="float64") - np.asarray(loss_model, dtype="float64")
    n_blocks = len(d) // max(1, block)
    if n_blocks < 2:
        return 0.0
    means = d[: n_blocks * block].reshape(n_blocks, -1).mean(axis=1)
    sd = means.std(ddof=1)
    return float(means.mean() / (sd / np.sqrt(n_blocks))) if sd > 0 else 0.0


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
