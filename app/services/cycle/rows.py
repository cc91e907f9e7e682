"""The cycle's row repository: read, list and update one `cycles` row safely, and its JSON view.

Build jobs of one cycle run in parallel on several workers and all write the row's JSON columns, so every
read-modify-write of a row happens under a short Redis lock (`mlpipe:cycle:lock:<id>:row`): no update is
lost, on Postgres and SQLite alike.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from sqlmodel import select

from app.core.db import session_scope
from app.core.errors import Conflict, NotFound
from app.core.redis import get_redis
from app.services.cycle import lock as cycle_lock
from app.tables.cycles import Cycle

LIVE_STATUSES = ("queued", "running")


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
        "started_ts": cycle.started_ts.isoformat() if cycle.started_ts else None,
        "finished_ts": cycle.finished_ts.isoformat() if cycle.finished_ts else None,
    }
