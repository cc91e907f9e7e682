"""The first two stages of a cycle: catch-up ingest, then one build (train, validate, save) per definition."""

from __future__ import annotations

import time
import traceback
from typing import Any

from sqlmodel import select

from app.core.db import session_scope
from app.core.logging import get_logger
from app.services.cycle import data as cycle_data
from app.services.cycle import training as cycle_ml
from app.services.cycle.definitions import definition_window, load_definitions
from app.services.cycle.lock import LockLost, check_lease, write_fence
from app.services.cycle.rows import error_entry, update
from app.services.cycle.start import cycle_symbols
from app.services.models import record_event, save_model, split_name
from app.tables.cycles import Cycle
from app.tables.models import ModelEvent, ModelRecord

log = get_logger(__name__)


def _already_built(cycle_id: str, family: str) -> ModelRecord | None:
    """A model of this family saved by this cycle (a retried build after its worker died post-save)."""
    with session_scope() as session:
        stmt = (
            select(ModelRecord)
            .join(ModelEvent, ModelEvent.model_name == ModelRecord.name)  # type: ignore[arg-type]
            .where(
                ModelEvent.cycle_id == cycle_id, ModelEvent.event == "trained", ModelRecord.family == family
            )
        )
        return session.exec(stmt).first()


def build(cycle_id: str, name: str) -> dict[str, Any]:
    """Train one definition on the cycle's window, validate it on its holdout, save it as a candidate.

    A definition that raises becomes a `failed` model row with its error; the cycle goes on. A retry of
    a build whose model was already saved (the worker died after saving) reuses that model. A try declared
    lost while it ran (its worker stopped beating) saves and records nothing (its job token is stale).
    """
    cycle = update(cycle_id, lambda c: _progress(c, name, state="running", attempts_plus=1))
    definition = next(d for d in load_definitions(cycle.options) if d["name"] == name)
    family, _ = split_name(name)
    started = time.perf_counter()
    try:
        record = _already_built(cycle_id, family)
        if record is None:
            window = cycle.results["window"]
            probe = _probe_model(definition)
            start_ms, end_ms = definition_window(window, definition)
            data = cycle_data.load_range(
                cycle_symbols(cycle.options), start_ms, end_ms, probe.timeframe, cycle_ml.warmup_bars(probe)
            )
            before = start_ms - cycle_ml.warmup_bars(probe) * probe.bar_ms  # the loaded window's start
            history = cycle_data.load_history(cycle_symbols(cycle.options), before,
                                              cycle_ml.history_days(definition), probe.timeframe)
            model = cycle_ml.train(definition, data, history)
            model.training_["window_end_ms"] = window["end_ms"]
            if definition.get("window_days") is not None:  # the definition's own window (a retrain keeps it)
                model.training_["window_days"] = float(definition["window_days"])
            model.training_["cycle_id"] = cycle_id
            check_lease(cycle_id)  # a job that lost its lock saves nothing
            record = save_model(model, name=family, status="candidate", cycle_id=cycle_id,
                                fence=write_fence(cycle_id))  # nor a try declared lost meanwhile
    except LockLost:
        raise  # not the definition's fault: the job stops, writing nothing
    except Exception as exc:  # noqa: BLE001 - a broken definition fails its model, not the cycle
        message = f"{type(exc).__name__}: {getattr(exc, 'message', exc)}"
        log.warning("cycle build failed", cycle_id=cycle_id, definition=name, error=message)
        failed = _record_failed(cycle_id, definition, family, message, traceback.format_exc(limit=5))
        update(
            cycle_id,
            lambda c: _progress(
                c,
                name,
                state="failed",
                error=message,
                model=failed,
                seconds=time.perf_counter() - started,
                error_entry_=error_entry("build", message, model=name),
            ),
        )
        return {"definition": name, "state": "failed", "error": message}
    update(
        cycle_id,
        lambda c: _progress(
            c,
            name,
            state="succeeded",
            model=record.name,
            kind=record.kind,
            score=record.score,
            seconds=time.perf_counter() - started,
        ),
    )
    return {"definition": name, "state": "succeeded", "model": record.name, "score": record.score}


def _probe_model(definition: dict[str, Any]) -> Any:
    """An unfitted instance of the definition's class: its features, horizon and timeframe."""
    from app.ml.registry import model_class_for

    cls = model_class_for(str(definition["type"]))
    kwargs = {k: definition[k] for k in ("features", "horizon", "timeframe") if definition.get(k) is not None}
    return cls(**kwargs)


def _record_failed(cycle_id: str, definition: dict[str, Any], family: str, message: str, trace: str) -> str:
    """A `failed` model row (no files) and its event, so `mlpipe models` shows what broke and why."""
    from app.services.models import next_version

    kind, model_type = _kind_of(definition)
    fence = write_fence(cycle_id)
    with session_scope(write=True) as session:
        if fence is not None:  # a try declared lost (its worker cut off, back now) records nothing
            fence(session)
        version = next_version(family, session)
        record = ModelRecord(
            name=f"{family}_{version:03d}",
            family=family,
            kind=kind,
            model_type=model_type,
            version=version,
            status="failed",
            store_dir="",
            features=list(definition.get("features") or []),
            hyperparams=dict(definition.get("config") or {}),
            error=message[:2000],
            training={"cycle_id": cycle_id},
            data_source="unknown",  # nothing was trained
            description=f"build of definition {definition['name']!r} failed",
        )
        session.add(record)
        session.flush()
        record_event(
            record.name,
            "failed",
            message[:500],
            numbers={"traceback": trace[-1500:]},
            cycle_id=cycle_id,
            session=session,
        )
        return record.name


def _kind_of(definition: dict[str, Any]) -> tuple[str, str]:
    try:
        from app.ml.registry import model_class_for

        cls = model_class_for(str(definition["type"]))
        return cls.kind, cls.model_type
    except Exception:  # noqa: BLE001 - an unknown type is exactly the error being recorded
        return "unknown", str(definition.get("type"))[:32]


def _progress(
    cycle: Cycle,
    name: str,
    *,
    state: str,
    attempts_plus: int = 0,
    seconds: float | None = None,
    error_entry_: dict[str, Any] | None = None,
    **fields: Any,
) -> None:
    entry = dict(cycle.progress.get(name) or {})
    entry["state"] = state
    entry["attempts"] = int(entry.get("attempts", 0)) + attempts_plus
    if seconds is not None:
        entry["seconds"] = round(seconds, 3)
    entry.update({k: v for k, v in fields.items() if v is not None})
    cycle.progress[name] = entry
    if error_entry_:
        cycle.errors.append(error_entry_)
