"""The cycle's row repository: read, list and update one `cycles` row safely, and its JSON view.

Build jobs of one cycle run in parallel on several workers and all write the row's JSON columns, so every
read-modify-write of a row locks it in the database (FOR UPDATE; a BEGIN IMMEDIATE write session on
SQLite): no update is lost, and nothing here depends on Redis. A write made by a cycle job (under its
lease) also checks, in the same transaction, that the cycle is still live, its fencing token still the
newest and the job's own token still this try's; otherwise it is refused with `LockLost` and the job stops.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlmodel import Session, select

from app.core.db import session_scope
from app.core.errors import NotFound
from app.services.cycle import lock as cycle_lock
from app.services.model_docs import jsonable
from app.tables.cycles import Cycle

LIVE_STATUSES = ("queued", "running")


def now() -> datetime:
    return datetime.now(UTC)


def update(cycle_id: str, change: Callable[[Cycle], None]) -> Cycle:
    """Apply `change` to the row, locked, in its own transaction; JSON columns are reassigned so they save."""
    with session_scope(write=True) as session:
        return update_in(session, cycle_id, change)


def update_in(session: Session, cycle_id: str, change: Callable[[Cycle], None]) -> Cycle:
    """`update` inside the caller's transaction (a ranking plan and its record commit together)."""
    lease = cycle_lock.current_lease(cycle_id)
    if lease is not None:
        lease.check_cycle_token(session)
    cycle = session.exec(select(Cycle).where(Cycle.id == cycle_id).with_for_update()).first()
    if cycle is None:
        raise NotFound(f"no cycle {cycle_id!r}; GET /cycles lists them")
    if lease is not None:
        lease.check_job(cycle)  # a try declared lost (its job retried elsewhere) writes nothing more
    if lease is not None and cycle.status not in LIVE_STATUSES and not lease.ended:
        lease.lose(f"the cycle is {cycle.status}")
        lease.check()
    for column in ("progress", "results", "timings", "options"):
        setattr(cycle, column, dict(getattr(cycle, column) or {}))
    cycle.errors = list(cycle.errors or [])
    change(cycle)
    # Postgres JSON refuses NaN and Infinity (a champion test of two identical models has df = inf)
    for column in ("progress", "results", "timings", "options"):
        setattr(cycle, column, jsonable(getattr(cycle, column)))
    cycle.errors = jsonable(cycle.errors)
    session.add(cycle)
    return cycle


def read(cycle_id: str) -> Cycle:
    with session_scope() as session:
        cycle = session.get(Cycle, cycle_id)
        if cycle is None:
            raise NotFound(f"no cycle {cycle_id!r}; GET /cycles (or `mlpipe cycle --list`) lists them")
        return cycle


def newest(limit: int = 20) -> list[Cycle]:
    """Newest first."""
    with session_scope() as session:
        stmt = select(Cycle).order_by(Cycle.created_ts.desc()).limit(limit)  # type: ignore[attr-defined]
        return list(session.exec(stmt).all())


def live_ids() -> list[str]:
    with session_scope() as session:
        stmt = select(Cycle.id).where(Cycle.status.in_(LIVE_STATUSES))  # type: ignore[attr-defined]
        return list(session.exec(stmt).all())


def error_entry(
    stage: str, message: str, *, model: str | None = None, level: str = "error"
) -> dict[str, Any]:
    entry = {"stage": stage, "level": level, "message": message, "ts": now().isoformat()}
    if model:
        entry["model"] = model
    return entry


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
        "heartbeat_ts": cycle.heartbeat_ts.isoformat() if cycle.heartbeat_ts else None,
        "started_ts": cycle.started_ts.isoformat() if cycle.started_ts else None,
        "finished_ts": cycle.finished_ts.isoformat() if cycle.finished_ts else None,
    }
