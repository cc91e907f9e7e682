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
from app.ml.drift import accuracy_drift, feature_drift, retrain_verdict
from app.services import cycle_data, cycle_ml
from app.services.cycles import error_entry, update
from app.services.models import get_model, list_models, load_model, record_event, save_model, set_status
from app.tables.cycles import Cycle

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
    from app.services.cycle_flow import set_stage

    set_stage(cycle_id, "drift")
    cycle = update(cycle_id, lambda c: None)
    symbols = cycle.results.get("symbols") or []
    anchor = int(cycle.results["window"]["end_ms"])
    report: dict[str, Any] = {}
    flagged: list[str] = []
    for record in list_models(status="active"):
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


def retrain(cycle_id: str, name: str) -> dict[str, Any]:
    """Train version n+1 of a flagged model; promote it only if better on the same fresh holdout."""
    label = f"retrain:{name}"
    cycle = update(cycle_id, lambda c: _progress(c, label, {"stage": "retrain", "state": "running"}))
    record = get_model(name)
    if record.status != "active":
        update(
            cycle_id, lambda c: _progress(c, label, {"state": "skipped", "reason": f"now {record.status}"})
        )
        return {"model": name, "skipped": record.status}
    old = load_model(name)
    window = cycle.results["window"]
    symbols = cycle.results.get("symbols") or []
    definition = {
        "type": record.kind,
        "name": record.family,
        "config": dict(record.hyperparams),
        "features": list(record.features),
        "horizon": old.horizon,
        "timeframe": old.timeframe,
    }
    warm = cycle_ml.warmup_bars(old)
    data = cycle_data.load_range(symbols, window["start_ms"], window["end_ms"], old.timeframe, warm)
    new = cycle_ml.train(definition, data)
    new.training_["window_end_ms"] = window["end_ms"]
    new.training_["cycle_id"] = cycle_id
    holdout_start = _ms(new.training_.get("holdout_start")) or window["start_ms"]
    seen = seen_until_ms(record.training, old.bar_ms)
    fresh = max(holdout_start, (seen or 0) + old.bar_ms)
    old_scores = cycle_ml.evaluate(old, data, fresh)
    new_scores = cycle_ml.evaluate(new, data, fresh) if old_scores is not None else None
    if old_scores is None or new_scores is None:  # too few unseen rows: the new holdout, minus old training
        old_trained_until = _ms(record.training.get("train_end_ms")) or 0
        fresh = max(holdout_start, old_trained_until + (old.horizon + 1) * old.bar_ms)
        old_scores = cycle_ml.evaluate(old, data, fresh)
        new_scores = cycle_ml.evaluate(new, data, fresh)
    verdict = retrain_verdict(old_scores or {}, new_scores or {}, is_classifier=old.is_classifier)
    saved = save_model(new, name=record.family, status="candidate", cycle_id=cycle_id)
    numbers = {
        **verdict.as_dict(),
        "holdout_from_ms": fresh,
        "holdout_rows": (new_scores or {}).get("rows"),
        "old_model": name,
        "new_model": saved.name,
    }
    if verdict.promote:
        set_status(
            saved.name, "active", f"retrained {name}: {verdict.reason}", numbers=numbers, cycle_id=cycle_id
        )
        set_status(
            name,
            "superseded",
            f"replaced by {saved.name}: {verdict.reason}",
            numbers=numbers,
            cycle_id=cycle_id,
        )
        outcome = "promoted"
    else:
        record_event(
            saved.name, "rejected", f"kept {name}: {verdict.reason}", numbers=numbers, cycle_id=cycle_id
        )
        record_event(
            name,
            "rejected",
            f"retrained {saved.name} rejected: {verdict.reason}",
            numbers=numbers,
            cycle_id=cycle_id,
        )
        set_status(saved.name, "archived", f"rejected retrain of {name}", numbers=numbers, cycle_id=cycle_id)
        outcome = "rejected"
    result = {
        "model": name,
        "new_model": saved.name,
        "outcome": outcome,
        **verdict.as_dict(),
        "holdout_from_ms": fresh,
    }

    def done(c: Cycle) -> None:
        _progress(c, label, {"state": "succeeded", "outcome": outcome, "new_model": saved.name})
        retrains = dict(c.results.get("retrains") or {})
        retrains[name] = result
        c.results["retrains"] = retrains

    update(cycle_id, done)
    log.info("cycle retrain decided", cycle_id=cycle_id, model=name, outcome=outcome, reason=verdict.reason)
    return result


def _progress(cycle: Cycle, label: str, fields: dict[str, Any]) -> None:
    entry = dict(cycle.progress.get(label) or {})
    entry.update(fields)
    cycle.progress[label] = entry


def retrain_or_record(cycle_id: str, name: str) -> dict[str, Any]:
    """`retrain`, turning an exception into a recorded error: the old model stays, the cycle goes on."""
    try:
        return retrain(cycle_id, name)
    except Exception as exc:  # noqa: BLE001 - a broken retrain keeps the old model, as a worse one would
        message = f"{type(exc).__name__}: {getattr(exc, 'message', exc)}"
        log.warning("cycle retrain failed", cycle_id=cycle_id, model=name, error=message)

        def failed(c: Cycle) -> None:
            _progress(c, f"retrain:{name}", {"state": "failed", "error": message})
            c.errors.append(error_entry("retrain", message, model=name))

        update(cycle_id, failed)
        return {"model": name, "error": message}
