"""Reading cycles, and marking the ones nothing can carry on any more `interrupted`.

A live cycle (`queued`/`running`) is *lost* when its Redis lock is gone (or held by another cycle) and no
job of it has beaten within `CYCLE_LEASE_SECONDS` (`cycles.heartbeat_ts`): every process that worked for it
was restarted, its workers are gone, or Redis lost its queue. Reads (GET /cycles, GET /cycles/{id},
`mlpipe cycle --show/--wait`) show a lost cycle as `interrupted` at once without writing anything;
`recover_interrupted()` records it, before a new cycle starts and when a worker starts. Nothing finished
is lost: models it saved stay `candidate`s and the next cycle ranks them. Jobs of an interrupted cycle that
a worker still picks up later see its status and do nothing.
"""

from __future__ import annotations

import time

from redis.exceptions import RedisError

from app.core.logging import get_logger
from app.services.cycle import lock as cycle_lock
from app.services.cycle.rows import LIVE_STATUSES, error_entry, live_ids, newest, now, read, update
from app.tables.cycles import Cycle

log = get_logger(__name__)


def _holder() -> str | None:
    try:
        return cycle_lock.holder()
    except RedisError:
        return None  # Redis does not answer: only the database heartbeat can tell


def is_lost(cycle: Cycle, holder: str | None) -> bool:
    """Live, without the lock, and silent for longer than the lease: nothing can carry it on."""
    return cycle.status in LIVE_STATUSES and holder != cycle.id and not cycle_lock.lease_fresh(cycle)


def _why(cycle: Cycle) -> str:
    beat = cycle.heartbeat_ts or cycle.created_ts
    silent = f"{time.time() - beat.timestamp():.1f}s" if beat is not None else "ever"
    return (
        f"its lock is gone and no job of it has reported for {silent} (workers stopped or killed, or Redis "
        "lost its queue); finished models were kept as candidates and the next cycle ranks them"
    )


def as_seen(cycle: Cycle, holder: str | None) -> Cycle:
    """The cycle as a reader should see it: a lost one reads as interrupted (a copy; nothing is written)."""
    if not is_lost(cycle, holder):
        return cycle
    seen = Cycle.model_validate(cycle.model_dump())
    seen.status = "interrupted"
    seen.finished_ts = now()
    seen.errors = [*cycle.errors, error_entry(cycle.stage, _why(cycle))]
    return seen


def get_cycle(cycle_id: str) -> Cycle:
    """One cycle, as readers see it (never written by reading)."""
    cycle = read(cycle_id)
    if cycle.status not in LIVE_STATUSES:
        return cycle
    return as_seen(cycle, _holder())


def list_cycles(limit: int = 20) -> list[Cycle]:
    """Newest first, as readers see them (never written by reading)."""
    cycles = newest(limit)
    holder = _holder() if any(c.status in LIVE_STATUSES for c in cycles) else None
    return [as_seen(c, holder) for c in cycles]


def recover_interrupted() -> list[str]:
    """Mark lost cycles `interrupted` (with the reason); return their ids."""
    marked: list[str] = []
    for cycle_id in live_ids():

        def mark(cycle: Cycle) -> None:
            # decided under the row lock: a job may have beaten, or the lock been taken, a moment ago
            if is_lost(cycle, _holder()):
                marked.append(cycle.id)
                cycle.errors.append(error_entry(cycle.stage, _why(cycle)))
                cycle.status = "interrupted"
                cycle.finished_ts = now()

        update(cycle_id, mark)
    for cycle_id in marked:
        log.warning("cycle interrupted", cycle_id=cycle_id)
    return marked


def is_live(cycle_id: str) -> bool:
    """False once the cycle finished or was interrupted: its leftover jobs then do nothing."""
    return read(cycle_id).status in LIVE_STATUSES
