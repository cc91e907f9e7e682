"""The retrain stage (DESIGN 6): a flagged model whose definition this cycle did not refit is trained again
as version n+1 on the cycle's window; old and new, scored on the same fresh rows, decide which one serves.

The fresh rows are the new model's holdout, from where the old model's window ended (rows neither has
seen; the whole new holdout minus the old model's training rows if that leaves too few). The new one
replaces the old (`superseded`) unless it is significantly worse there (one-sided paired test at 5%,
`app.ml.lifecycle.retrain_verdict`: the fresher fit wins ties); else it is archived and the decision
recorded as `rejected`. If the new one is still significantly below the old one's validation skill, the
definition is recorded as needing tuning (`needs_tuning`).
"""

from __future__ import annotations

from typing import Any

from app.core.logging import get_logger
from app.ml.comparison import common_rows, paired_test
from app.ml.evaluation import skill_estimate
from app.ml.lifecycle import retrain_verdict, tuning_verdict
from app.services.cycle import data as cycle_data
from app.services.cycle import training as cycle_ml
from app.services.cycle.definitions import definition_window
from app.services.cycle.drift import _ms, seen_until_ms, start_tuning
from app.services.cycle.lock import check_lease, write_fence
from app.services.cycle.plan import apply_plan
from app.services.cycle.rows import error_entry, update
from app.services.models import get_model, load_model, record_event, save_model
from app.tables.cycles import Cycle

log = get_logger(__name__)


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
    days = (record.training or {}).get("window_days")  # the definition's own window, when it had one
    start_ms, end_ms = definition_window(window, {"window_days": days} if days else {})
    data = cycle_data.load_range(symbols, start_ms, end_ms, old.timeframe, warm)
    history = cycle_data.load_history(symbols, start_ms - warm * old.bar_ms,
                                      cycle_ml.history_days(definition), old.timeframe)
    new = cycle_ml.train(definition, data, history)
    new.training_["window_end_ms"] = window["end_ms"]
    if days:
        new.training_["window_days"] = days
    new.training_["cycle_id"] = cycle_id
    holdout_start = _ms(new.training_.get("holdout_start")) or window["start_ms"]
    seen = seen_until_ms(record.training, old.bar_ms)
    fresh = max(holdout_start, (seen or 0) + old.bar_ms)
    new_label = f"{record.family} (retrained)"
    old_rows, new_rows = common_rows(cycle_ml.rows_from(old, data, fresh, name),
                                     cycle_ml.rows_from(new, data, fresh, new_label))
    if len(old_rows) < cycle_ml.MIN_EVAL_ROWS:  # too few unseen rows: the new holdout, minus old training
        old_trained_until = _ms(record.training.get("train_end_ms")) or 0
        fresh = max(holdout_start, old_trained_until + (old.horizon + 1) * old.bar_ms)
        old_rows, new_rows = common_rows(cycle_ml.rows_from(old, data, fresh, name),
                                         cycle_ml.rows_from(new, data, fresh, new_label))
    test = paired_test(old_rows, new_rows, "b_worse")
    verdict = retrain_verdict(test)
    tuning = tuning_verdict(record.performance, skill_estimate(new_rows, seed=int(old.seed)))
    check_lease(cycle_id)  # a job that lost its lock saves and decides nothing
    saved = save_model(new, name=record.family, status="candidate", cycle_id=cycle_id,
                       fence=write_fence(cycle_id))
    numbers = {
        **verdict.as_dict(),
        "holdout_from_ms": fresh,
        "holdout_rows": len(new_rows),
        "old_model": name,
        "new_model": saved.name,
        "tuning": tuning.as_dict(),
    }
    if verdict.replace:  # one fenced transaction: the new one active, then the old one superseded
        apply_plan(cycle_id, {saved.name: ("active", f"retrained {name}: {verdict.reason}", numbers),
                              name: ("superseded", f"replaced by {saved.name}: {verdict.reason}", numbers)})
        outcome = "promoted"
    else:  # one fenced transaction too: the two events and the archive
        apply_plan(cycle_id, {saved.name: ("archived", f"rejected retrain of {name}", numbers)}, events=[
            (saved.name, "rejected", f"kept {name}: {verdict.reason}", numbers),
            (name, "rejected", f"retrained {saved.name} rejected: {verdict.reason}", numbers),
        ])
        outcome = "rejected"
    study: dict[str, Any] = {}
    if tuning.flagged:
        study = start_tuning(cycle_id, record.family, definition)
        record_event(saved.name, "needs_tuning",
                     f"definition {record.family} retrained is still below {name}'s validation skill: "
                     f"{tuning.reason}", numbers={**numbers, "study": study}, cycle_id=cycle_id,
                     fence=write_fence(cycle_id))
    result = {
        "model": name,
        "new_model": saved.name,
        "outcome": outcome,
        **verdict.as_dict(),
        "old_skill": test.skill_a,
        "new_skill": test.skill_b,
        "needs_tuning": tuning.flagged,
        "holdout_from_ms": fresh,
        **({"study": study} if study else {}),
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
