"""Cycles: start one (one at a time), read them, update their row safely, finish and recover them.

A cycle is a chain of RQ jobs (see `cycle_flow`); this module owns its database row. Build jobs of one
cycle run in parallel on several workers and all write the row's JSON columns, so every read-modify-write
of a row happens under a short Redis lock (`mlpipe:cycle:<id>:row`): no update is lost, on Postgres and
SQLite alike.

Recovery (chosen: *mark interrupted*, not resume): a cycle still `queued`/`running` whose Redis lock is
gone (expired because no cycle job has run for `LOCK_TTL_SECONDS`, e.g. every process was restarted) is
marked `interrupted` with its stage, by `recover_interrupted()`. It runs before every new cycle starts, on
every read of the cycle list or of a live cycle, and may be called at worker start. Nothing finished is lost:
models it saved stay as `candidate`s and the next cycle ranks them with its own. Jobs of an interrupted cycle
that a worker still picks up later see its status and do nothing.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from sqlmodel import select

from app.core.db import session_scope
from app.core.errors import BadInput, Conflict, NotFound
from app.core.logging import get_logger
from app.core.redis import get_redis
from app.services import cycle_lock
from app.tables.cycles import CYCLE_TRIGGERS, FINISHED_STATUSES, Cycle

log = get_logger(__name__)

LIVE_STATUSES = ("queued", "running")


class CycleRunning(Conflict):
    """A cycle is already running; `running_id` says which."""

    def __init__(self, running_id: str) -> None:
        super().__init__(
            f"cycle {running_id} is still running; wait for it (GET /cycles/{running_id}) or for its lock "
            f"to expire ({cycle_lock.LOCK_TTL_SECONDS}s after its last job) before starting another"
        )
        self.running_id = running_id


def now() -> datetime:
    return datetime.now(UTC)


@contextmanager
def row_lock(cycle_id: str) -> Iterator[None]:
    lock = get_redis().lock(f"{cycle_lock.lock_key()}:{cycle_id}:row", timeout=30, blocking_timeout=60)
    if not lock.acquire():
        raise Conflict(f"cycle {cycle_id}: could not lock its row for 60 s; is Redis overloaded?")
    try:
        yield
    finally:
        try:
            lock.release()
        except Exception:  # noqa: BLE001 - it expired: nothing left to release
            pass


def update(cycle_id: str, change: Callable[[Cycle], None]) -> Cycle:
    """Apply `change` to the row under the row lock; JSON columns are reassigned so they are saved."""
    with row_lock(cycle_id), session_scope() as session:
        cycle = session.get(Cycle, cycle_id)
        if cycle is None:
            raise NotFound(f"no cycle {cycle_id!r}; GET /cycles lists them")
        for column in ("progress", "results", "timings", "options"):
            setattr(cycle, column, dict(getattr(cycle, column) or {}))
        cycle.errors = list(cycle.errors or [])
        change(cycle)
        session.add(cycle)
        return cycle


def get_cycle(cycle_id: str) -> Cycle:
    """One cycle; a live one whose lock is gone is marked `interrupted` first, so no read (GET /cycles/{id},
    `mlpipe cycle --show/--wait`) shows a cycle as running that nothing can carry on any more."""
    cycle = _read(cycle_id)
    if cycle.status in LIVE_STATUSES and cycle_lock.holder() != cycle_id:
        recover_interrupted()
        cycle = _read(cycle_id)
    return cycle


def _read(cycle_id: str) -> Cycle:
    with session_scope() as session:
        cycle = session.get(Cycle, cycle_id)
        if cycle is None:
            raise NotFound(f"no cycle {cycle_id!r}; GET /cycles (or `mlpipe cycle --list`) lists them")
        return cycle


def list_cycles(limit: int = 20) -> list[Cycle]:
    """Newest first."""
    recover_interrupted()
    with session_scope() as session:
        stmt = select(Cycle).order_by(Cycle.created_ts.desc()).limit(limit)  # type: ignore[attr-defined]
        return list(session.exec(stmt).all())


def recover_interrupted() -> list[str]:
    """Mark live cycles that no longer hold the lock as `interrupted`; return their ids."""
    holder = cycle_lock.holder()
    with session_scope() as session:
        stmt = select(Cycle.id).where(Cycle.status.in_(LIVE_STATUSES))  # type: ignore[attr-defined]
        stale = [cid for cid in session.exec(stmt).all() if cid != holder]
    marked: list[str] = []
    for cycle_id in stale:

        def mark(cycle: Cycle) -> None:
            # checked again under the row lock: a cycle started since `holder` was read holds the lock now
            if cycle.status in LIVE_STATUSES and cycle_lock.holder() != cycle.id:
                marked.append(cycle.id)
                cycle.status = "interrupted"
                cycle.finished_ts = now()
                cycle.errors.append(
                    error_entry(
                        cycle.stage,
                        "its lock expired: no cycle job ran for "
                        f"{cycle_lock.LOCK_TTL_SECONDS}s (processes restarted or workers gone); finished "
                        "models were kept as candidates and the next cycle ranks them",
                    )
                )

        update(cycle_id, mark)
    for cycle_id in marked:
        log.warning("cycle interrupted", cycle_id=cycle_id)
    return marked


def error_entry(
    stage: str, message: str, *, model: str | None = None, level: str = "error"
) -> dict[str, Any]:
    entry = {"stage": stage, "level": level, "message": message, "ts": now().isoformat()}
    if model:
        entry["model"] = model
    return entry


def start_cycle(trigger: str = "operator", options: dict[str, Any] | None = None) -> Cycle:
    """Create a cycle, take the lock (or raise `CycleRunning` with the holder's id) and enqueue its first job.

    `options` (tests, benchmarks, operators): `window_days`, `definitions` (inline list replacing the
    config file), `models_file`, `symbols`, `ingest` (False skips the catch-up), `build_timeout`.
    """
    if trigger not in CYCLE_TRIGGERS:
        raise BadInput(f"unknown trigger {trigger!r}; one of {', '.join(CYCLE_TRIGGERS)}")
    from app.services.cycle_definitions import check_buildable, load_definitions, window_days

    options = dict(options or {})
    definitions = load_definitions(options)
    check_buildable(definitions)  # a broken config fails here, in front of the operator
    # Frozen into the cycle: an operator editing config/models.yaml mid-cycle changes the next cycle only.
    options["definitions"] = definitions
    options["window_days"] = window_days(options)
    recover_interrupted()
    cycle_id = uuid.uuid4().hex
    running = cycle_lock.acquire(cycle_id)
    if running is not None:
        raise CycleRunning(running)
    try:
        with session_scope() as session:
            cycle = Cycle(id=cycle_id, trigger=trigger, options=options, timings={"queued_at": time.time()})
            session.add(cycle)
        from app.services.cycle_flow import enqueue_start

        enqueue_start(cycle_id)
    except BaseException:
        cycle_lock.release(cycle_id)
        raise
    log.info("cycle queued", cycle_id=cycle_id, trigger=trigger)
    return get_cycle(cycle_id)


def is_live(cycle_id: str) -> bool:
    """False once the cycle finished or was interrupted: its leftover jobs then do nothing."""
    return get_cycle(cycle_id).status in LIVE_STATUSES


def fail_cycle(cycle_id: str, stage: str, message: str) -> Cycle:
    def change(cycle: Cycle) -> None:
        cycle.status = "failed"
        cycle.stage = "done"
        cycle.finished_ts = now()
        cycle.errors.append(error_entry(stage, message))
        cycle.timings["total"] = round(time.time() - float(cycle.timings.get("started_at", time.time())), 3)

    cycle = update(cycle_id, change)
    cycle_lock.release(cycle_id)
    _record_metric("failed")
    log.error("cycle failed", cycle_id=cycle_id, stage=stage, reason=message)
    return cycle


def close_lost_jobs(cycle: Cycle, stage: str | None = None) -> None:
    """Entries still queued/running once the jobs they wait for are done lost their job: they failed.

    (A build or retrain abandoned twice, e.g. its worker SIGKILLed on both tries.)
    """
    for name, entry in cycle.progress.items():
        if (stage is None or entry.get("stage") == stage) and entry.get("state") in ("queued", "running"):
            step = entry.get("stage", "job")
            entry = dict(entry, state="failed", error=f"its {step} job ended without a result (worker lost)")
            cycle.progress[name] = entry
            cycle.errors.append(error_entry(step, entry["error"], model=name))


def finish_cycle(cycle_id: str) -> Cycle:
    """Close the cycle: `partial` when any model or stage failed, else `succeeded`; release the lock."""

    def change(cycle: Cycle) -> None:
        if cycle.status in FINISHED_STATUSES:
            return
        close_lost_jobs(cycle)
        failed = [name for name, p in cycle.progress.items() if p.get("state") == "failed"]
        errors = [e for e in cycle.errors if e.get("level") == "error"]
        cycle.status = "partial" if failed or errors else "succeeded"
        cycle.stage = "done"
        cycle.finished_ts = now()
        started = float(cycle.timings.get("started_at", time.time()))
        cycle.timings["total"] = round(time.time() - started, 3)
        cycle.results["failed_models"] = failed

    cycle = update(cycle_id, change)
    cycle_lock.release(cycle_id)
    _record_metric(cycle.status)
    log.info("cycle finished", cycle_id=cycle_id, status=cycle.status)
    return cycle


def _record_metric(outcome: str) -> None:
    try:
        from app.api.metrics import record_cycle
    except ImportError:
        return
    try:
        record_cycle(outcome)
    except Exception:  # noqa: BLE001 - a metrics hiccup never changes a cycle's outcome
        log.warning("could not record the cycle metric", outcome=outcome)


def cycle_view(cycle: Cycle) -> dict[str, Any]:
    """The JSON shape GET /cycles/{id} and `mlpipe cycle` show."""
    return {
        "id": cycle.id,
        "status": cycle.status,
        "trigger": cycle.trigger,
        "stage": cycle.stage,
        "progress": cycle.progress,
        "results": cycle.results,
        "timings": cycle.timings,
        "errors": cycle.errors,
        "created_ts": cycle.created_ts.isoformat() if cycle.created_ts else None,
        "started_ts": cycle.started_ts.isoformat() if cycle.started_ts else None,
        "finished_ts": cycle.finished_ts.isoformat() if cycle.finished_ts else None,
    }
