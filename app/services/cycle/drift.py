"""The drift stage (DESIGN 6): the models that served until this cycle, on the newest hours they never saw.

Scored: every model active when the cycle began (its champions and other active models, before rank
refreshed them) and every model active now that this cycle did not train, on the newest 24 hours after
its training window (a model trained by this cycle has none and is skipped). Flagged only when its skill
there is below its validation skill by more than 0.05 AND the drop is significant at 5%
(`app.ml.lifecycle.drift_verdict`); feature drift (PSI per feature against its training window,
calibrated on day-to-day distances; app.ml.drift) is recorded beside it.

A flagged model's definition retrained on the latest window is this cycle's fresh fit of it when there is
one (rank already let it replace the old one unless significantly worse); then the fresh fit is scored on
the same unseen hours, and if it is still significantly below the validation skill the definition is
recorded as needing tuning (a `needs_tuning` event). A flagged model whose definition has no fresh fit
goes to the retrain job (app.services.cycle.retrain).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pandas as pd

from app.core.logging import get_logger
from app.ml.drift import feature_drift
from app.ml.evaluation import estimate_from_performance
from app.ml.lifecycle import drift_verdict, tuning_verdict
from app.services.cycle import data as cycle_data
from app.services.cycle import training as cycle_ml
from app.services.cycle.flow import enqueue_retrains, set_stage
from app.services.cycle.lock import check_lease, write_fence
from app.services.cycle.rows import error_entry, read, update
from app.services.models import get_model, list_models, load_model, record_event

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


def _checked(cycle: Any) -> list[Any]:
    """The models that served until this cycle, and the active ones it did not train."""
    served = set((cycle.results.get("ranking") or {}).get("served_before") or [])
    records = {r.name: r for r in list_models(status="active")}
    for name in served - set(records):
        records[name] = get_model(name)
    return [records[n] for n in sorted(records) if (records[n].training or {}).get("cycle_id") != cycle.id]


def evaluate_drift(cycle_id: str) -> list[str]:
    """Score the models that served on their unseen newest hours; record the numbers; return those to
    retrain (flagged ones whose definition this cycle did not refit)."""
    set_stage(cycle_id, "drift")
    cycle = update(cycle_id, lambda c: None)
    symbols = cycle.results.get("symbols") or []
    anchor = int(cycle.results["window"]["end_ms"])
    report: dict[str, Any] = {}
    flagged: list[str] = []
    for record in _checked(cycle):
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
        if entry.get("flagged") and not entry.get("refreshed_by"):
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
    verdict = drift_verdict(record.performance, estimate_from_performance(live))
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
    event = "flagged" if verdict.flagged else "validated"
    what = "skill drift" if verdict.flagged else "no skill drift"
    record_event(record.name, event, f"{what}: {verdict.reason}", numbers=numbers, cycle_id=cycle_id,
                 fence=write_fence(cycle_id))  # a try declared lost records nothing
    entry = {
        "flagged": verdict.flagged,
        "skill": verdict.as_dict(),
        "feature_drift": features,
        "drifted_features": drifted,
        "live": {k: live.get(k) for k in ("accuracy", "f1", "rmse", "skill", "skill_interval", "rows")},
    }
    if verdict.flagged:
        entry |= _retrained_in_this_cycle(record, candles, start, cycle_id)
    return entry


def _retrained_in_this_cycle(record: Any, candles: dict, start: int, cycle_id: str) -> dict[str, Any]:
    """The flagged definition's fresh fit of this cycle, on the same unseen hours: mended, or to tune?"""
    sibling = next((r for r in list_models() if r.family == record.family and r.name != record.name
                    and (r.training or {}).get("cycle_id") == cycle_id and r.store_dir), None)
    if sibling is None:
        return {}
    fresh = load_model(sibling.name)
    live = cycle_ml.evaluate(fresh, candles, start)
    if live is None:
        return {"refreshed_by": sibling.name, "tuning": {"skipped": "too few unseen rows for the fresh fit"}}
    verdict = tuning_verdict(record.performance, estimate_from_performance(live))
    numbers = {**verdict.as_dict(), "definition": record.family, "flagged_model": record.name,
               "retrained_model": sibling.name, "live_from_ms": start}
    study: dict[str, Any] = {}
    if verdict.flagged:
        study = start_tuning(cycle_id, record.family)
        record_event(sibling.name, "needs_tuning",
                     f"definition {record.family} retrained is still below {record.name}'s validation skill: "
                     f"{verdict.reason}", numbers={**numbers, "study": study}, cycle_id=cycle_id,
                     fence=write_fence(cycle_id))
    return {"refreshed_by": sibling.name, "needs_tuning": verdict.flagged, "tuning": verdict.as_dict(),
            **({"study": study} if study else {})}


def start_tuning(cycle_id: str, family: str, fallback: dict[str, Any] | None = None) -> dict[str, Any]:
    """The definition goes to tuning (DESIGN 10): a bounded study, recorded in the cycle's results."""
    from app.services.tuning.cycle import tune_for_cycle

    check_lease(cycle_id)  # a job that lost its lock starts no study
    study = tune_for_cycle(read(cycle_id), family, fallback)

    def record(c: Any) -> None:
        tuning = dict(c.results.get("tuning") or {})
        tuning[family] = study
        c.results["tuning"] = tuning
        if study.get("skipped") and not study.get("study_id"):
            c.errors.append(error_entry("tuning", f"{family}: {study['skipped']}", level="warning"))

    update(cycle_id, record)
    return study


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
