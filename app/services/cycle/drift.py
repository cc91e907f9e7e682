"""The drift and retrain stages (DESIGN 6).

Drift: every active model is scored on the newest 24 hours it has not seen (after its training window);
the accuracy (skill for regressors) drop flags it, and the feature drift (PSI per feature against its
training window, calibrated on day-to-day distances; see app.ml.drift) is recorded beside it. A model
trained in this very cycle has no unseen hours yet and is skipped.

Retrain: a flagged model is trained again with the same definition on the cycle's window as version n+1.
Old and new are scored on the same fresh holdout: the new model's holdout, from where the old model's
window ended (rows neither has seen; the whole new holdout if that leaves too few rows). The new one
replaces the old (`superseded`) only if its F1 (RMSE for regressors) is better; else it is archived and
the decision recorded as `rejected`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pandas as pd

from app.core.logging import get_logger
from app.ml.drift import accuracy_drift, feature_drift
from app.services.cycle import data as cycle_data
from app.services.cycle import training as cycle_ml
from app.services.cycle.flow import enqueue_retrains, set_stage
from app.services.cycle.lock import check_lease
from app.services.cycle.rows import error_entry, read, update
from app.services.models import list_models, load_model, record_event

log = get_logger(__name__)

LIVE_HOURS = 24


def _ms(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, int | float):
        return int(value)
    stamp = pd.Timestamp(value if not isinstance(value, datetime) else value.isoformat())
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp
    return int(stamp.value // 1_000_000)


def seen_until_ms(training: dict[str, Any], bar_ms: int) -> int | None:
    """The last candle the model's training window held (its holdout included)."""
    end = _ms(training.get("window_end_ms"))
    if end is None:
        end = _ms(training.get("train_end_ms")) or _ms(training.get("train_end"))
    return end


def evaluate_drift(cycle_id: str) -> list[str]:
    """Score every active model on its unseen newest hours; record the numbers; return the flagged names."""
    set_stage(cycle_id, "drift")
    cycle = update(cycle_id, lambda c: None)
    symbols = cycle.results.get("symbols") or []
    anchor = int(cycle.results["window"]["end_ms"])
    report: dict[str, Any] = {}
    flagged: list[str] = []
    for record in list_models(status="active"):
        check_lease(cycle_id)  # a job that lost its lock records nothing more
        try:
            entry = _drift_of(record, symbols, anchor, cycle_id)
        except Exception as exc:  # noqa: BLE001 - one model's broken evaluation must not stop the others
            message = f"{type(exc).__name__}: {getattr(exc, 'message', exc)}"
            update(
                cycle_id,
                lambda c, m=message, n=record.name: c.errors.append(
                    error_entry("drift", m, model=n, level="warning")
                ),
            )
            entry = {"skipped": message}
        report[record.name] = entry
        if entry.get("flagged"):
            flagged.append(record.name)
    update(cycle_id, lambda c: c.results.__setitem__("drift", report))
    return flagged


def _drift_of(record: Any, symbols: list[str], anchor: int, cycle_id: str) -> dict[str, Any]:
    model = load_model(record.name)
    bar = model.bar_ms
    seen = seen_until_ms(record.training, bar)
    start = anchor - LIVE_HOURS * 3_600_000 + bar
    if seen is not None:
        start = max(start, seen + bar)
    if start > anchor:
        return {"skipped": "no unseen candles yet (trained on the newest window)"}
    warm = cycle_ml.warmup_bars(model)
    candles = cycle_data.load_range(symbols, start, anchor, model.timeframe, warm)
    live = cycle_ml.evaluate(model, candles, start)
    if live is None:
        return {"skipped": f"fewer than {cycle_ml.MIN_EVAL_ROWS} labelled unseen rows"}
    verdict = accuracy_drift(record.performance, live, is_classifier=model.is_classifier)
    features = _feature_drift(model, record, symbols, start, anchor)
    drifted = sorted(name for name, f in features.items() if f["drifted"])
    numbers = {
        **verdict.as_dict(),
        "live_rows": live.get("rows"),
        "live_from_ms": start,
        "live_to_ms": anchor,
        "drifted_features": drifted,
        "feature_drift": features,
    }
    if verdict.flagged:
        record_event(
            record.name, "flagged", f"accuracy drift: {verdict.reason}", numbers=numbers, cycle_id=cycle_id
        )
    else:
        record_event(
            record.name,
            "validated",
            f"no accuracy drift: {verdict.reason}",
            numbers=numbers,
            cycle_id=cycle_id,
        )
    return {
        "flagged": verdict.flagged,
        "accuracy": verdict.as_dict(),
        "feature_drift": features,
        "drifted_features": drifted,
        "live": {k: live.get(k) for k in ("accuracy", "f1", "rmse", "skill", "rows")},
    }


def _feature_drift(model: Any, record: Any, symbols: list[str], start: int, anchor: int) -> dict[str, Any]:
    train_start = _ms(record.training.get("train_start"))
    train_end = seen_until_ms(record.training, model.bar_ms)
    if train_start is None or train_end is None:
        return {}
    warm = cycle_ml.warmup_bars(model)
    train = cycle_ml.feature_rows(
        model,
        cycle_data.load_range(symbols, train_start, train_end, model.timeframe, warm),
        train_start,
        train_end,
    )
    live = cycle_ml.feature_rows(
        model, cycle_data.load_range(symbols, start, anchor, model.timeframe, warm), start, anchor
    )
    bars_per_day = 86_400_000 // model.bar_ms
    return feature_drift(train, live, window_bars=bars_per_day * max(1, len(symbols)))




def drift_stage(cycle_id: str) -> list[str]:
    """The drift job's body: evaluate, then queue a retrain per flagged model and the finish job.

    A retry whose first try already recorded this cycle's drift report reuses it (no event twice)."""
    done = read(cycle_id).results.get("drift")
    if done is not None:
        flagged = [name for name, entry in done.items() if entry.get("flagged")]
    else:
        flagged = evaluate_drift(cycle_id)
    set_stage(cycle_id, "retrain" if flagged else "finish")
    enqueue_retrains(cycle_id, flagged, read(cycle_id).options.get("build_timeout"))
    return flagged
