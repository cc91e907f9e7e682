"""What a stored model says about itself: metadata.json (the seed's fields) and README.md (in words)."""

from __future__ import annotations

import math
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from app.ml.base import BaseModel
    from app.tables.models import ModelRecord

CLASSIFIER_METRICS = ("accuracy", "precision", "recall", "f1")
REGRESSOR_METRICS = ("rmse", "mae", "r2")
# DESIGN 5: every skill with its interval and effective n, proper scores, the walk-forward folds
EVIDENCE = ("skill_interval", "beats_baseline", "n_effective", "intervals", "walk_forward", "score")
PROPER = {True: ("log_loss", "brier", "brier_skill", "accuracy_skill", "roc_auc"), False: ("qlike",)}
TARGETS = {
    "direction": "whether the close {h} bars ahead is above the current close (UP) or not (DOWN)",
    "risk": "the largest move of the price away from the current close, either way, over the next {h} bars, "
    "answered as its percentile (0-100) among the training outcomes",
    "price": "the log return of the close over the next hour ({h} bars), answered as a price",
    "momentum": "whether momentum (close / close n bars earlier - 1) moves further in its current direction "
    "over the next {h} bars (accelerating) or not (decelerating)",
    "volatility": "the realized volatility of returns over the next {h} bars",
}


def jsonable(value: Any) -> Any:
    """Plain JSON (no NaN, no numpy scalars): Postgres JSON refuses NaN and json.dumps cannot write numpy."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | np.ndarray):
        return [jsonable(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    if value is None or isinstance(value, str | int | bool):
        return value
    return str(value)


def _pick(performance: dict[str, Any], *keys: str) -> Any:
    for key in keys:
        if performance.get(key) is not None:
            return performance[key]
    return None


def baseline_of(performance: dict[str, Any], is_classifier: bool) -> dict[str, Any]:
    """The best naive baseline: its name and its figure (accuracy for classifiers, RMSE for regressors)."""
    metric = "accuracy" if is_classifier else "rmse"
    name = performance.get("baseline")
    value = performance.get(f"baseline_{metric}")
    if not isinstance(name, str):  # a bare figure, as some callers give it
        name, value = None, name if value is None else value
    if is_classifier and performance.get("baseline_brier") is not None:  # skill is on Brier (DESIGN 5)
        return {"name": name, "brier": performance["baseline_brier"],
                "accuracy_baseline": performance.get("accuracy_baseline"), "accuracy": value}
    return {"name": name, metric: value}


def headline_performance(performance: dict[str, Any], is_classifier: bool, window: Any) -> dict[str, Any]:
    """The seed's `performance` block from the full validation metrics."""
    if is_classifier:
        block = {f"backtest_{m}": _pick(performance, f"backtest_{m}", m) for m in CLASSIFIER_METRICS}
    else:
        block = {m: _pick(performance, m, f"backtest_{m}") for m in REGRESSOR_METRICS}
    block["baseline"] = baseline_of(performance, is_classifier)
    block["skill"] = performance.get("skill")
    block["window"] = _pick(performance, "window", "backtest_window") or window
    block["backtest_window"] = block["window"]  # the seed's name for it
    for key in EVIDENCE + PROPER[is_classifier]:
        if key in performance:
            block[key] = performance[key]
    return jsonable(block)


def metadata_for(record: ModelRecord, *, dependencies: list[str], is_classifier: bool) -> dict[str, Any]:
    training = record.training
    return {
        "name": record.name,
        "type": record.model_type,
        "kind": record.kind,
        "description": record.description,
        "created_ts": record.created_ts.isoformat(),
        "version": record.version,
        "status": record.status,
        "features": list(record.features),
        "feature_count": len(record.features),
        # DESIGN 3: the list as given and what was fed instead of each price- or volume-unit feature
        "features_given": list(training.get("features_given") or record.features),
        "feature_substitutions": list(training.get("feature_substitutions") or []),
        "hyperparams": dict(record.hyperparams),
        "training": {
            "symbols": list(training.get("symbols") or []),
            "data_points": training.get("data_points"),
            "train_ratio": training.get("train_ratio"),
            "validation_ratio": training.get("validation_ratio"),
            "window": training.get("window"),
            "data_source": record.data_source,
        },
        "performance": headline_performance(record.performance, is_classifier, training.get("window")),
        "live_performance": dict(record.live_performance),
        "dependencies": list(dependencies),
    }


def _fmt(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, float) else ("n/a" if value is None else str(value))


def _interval(interval: Any) -> str:
    return "n/a" if not interval or None in interval else f"[{interval[0]:.4f}, {interval[1]:.4f}]"


def _substitution_lines(training: dict[str, Any]) -> list[str]:
    subs = training.get("feature_substitutions") or []
    if not subs:
        return []
    pairs = ", ".join(f"{s['given']} as {s['fed']}" for s in subs)
    return [f"- **Fed in scale-free form** (asked for {', '.join(training.get('features_given') or [])}): "
            f"{pairs}."]


def readme_for(record: ModelRecord, model: BaseModel) -> str:
    """README.md of a model directory: what it predicts, from what, and how well, in words."""
    training, horizon = record.training, getattr(model, "horizon", "?")
    timeframe = getattr(model, "timeframe", "1m")
    perf = headline_performance(record.performance, model.is_classifier, training.get("window"))
    metric = "accuracy" if model.is_classifier else "rmse"
    value = perf.get("backtest_accuracy") if model.is_classifier else perf.get("rmse")
    baseline = perf["baseline"]
    target = TARGETS.get(record.kind, record.kind).format(h=horizon)
    lines = [
        f"# {record.name}",
        "",
        f"{record.description}.",
        "",
        f"- **Kind**: {record.kind} ({record.model_type}, version {record.version}, saved "
        f"{record.created_ts:%Y-%m-%d %H:%M} UTC).",
        f"- **Predicts**: {target}; horizon {horizon} bars of {timeframe}.",
        f"- **Features** ({len(record.features)}): {', '.join(record.features)}.",
        *_substitution_lines(training),
        f"- **Data**: {training.get('data_points', 'n/a')} rows from "
        f"{', '.join(training.get('symbols') or [])} "
        f"({record.data_source}), window {training.get('window', 'n/a')}, "
        f"{_fmt(training.get('train_start'))} to {_fmt(training.get('train_end'))}; chronological split "
        f"{training.get('train_ratio', 'n/a')} train / {training.get('validation_ratio', 'n/a')} holdout "
        "with an embargo of at least the horizon.",
        f"- **Holdout**: {metric} {_fmt(value)} against {_fmt(baseline[metric])} for the naive "
        f"baseline ({baseline['name'] or 'unnamed'}); skill {_fmt(perf.get('skill'))} "
        f"(95% interval {_interval(perf.get('skill_interval'))}; the share of the strongest baseline's "
        "error removed, on a proper score: 0 = no better, negative = worse): it "
        f"{'beats' if perf.get('beats_baseline') else 'does not beat'} its baseline.",
        "",
        "Files: the model in a safe format (`" + model.artifact_file + "`), `config.json` (features, "
        "hyperparameters, calibration) and this README: their SHA-256 are recorded in the database and "
        "checked on every load, so edit none of them. `metadata.json` is a readable copy of the model's "
        "database row (status, live performance), rewritten when they change. Load it with "
        f"`app.ml.load_model(\"{record.name}\")`.",
        "",
    ]
    return "\n".join(lines)
