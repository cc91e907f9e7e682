"""Reading cycles, and marking the ones nothing can carry on any more `interrupted`.

Recovery (chosen: *mark interrupted*, not resume): a cycle still `queued`/`running` whose Redis lock is
gone (expired because no cycle job has run for `LOCK_TTL_SECONDS`, e.g. every process was restarted) is
marked `interrupted` with its stage, by `recover_interrupted()`. It runs before every new cycle starts, on
every read of the cycle list or of a live cycle, and may be called at worker start. Nothing finished is lost:
models it saved stay as `candidate`s and the next cycle ranks them with its own. Jobs of an interrupted cycle
that a worker still picks up later see its status and do nothing.
"""

from __future__ import annotations

from app.core.logging import get_logger
from app.services.cycle import lock as cycle_lock
from app.services.cycle.rows import LIVE_STATUSES, error_entry, live_ids, newest, now, read, update
from app.tables.cycles import Cycle

log = get_logger(__name__)


def get_cycle(cycle_id: str) -> Cycle:
    """One cycle; a live one whose lock is gone is marked `interrupted` first, so no read (GET /cycles/{id},
    `mlpipe cycle --show/--wait`) shows a cycle as running that nothing can carry on any more."""
    cycle = read(cycle_id)
    if cycle.status in LIVE_STATUSES and cycle_lock.holder() != cycle_id:
        recover_interrupted()
        cycle = read(cycle_id)
    return cycle


def list_cycles(limit: int = 20) -> list[Cycle]:
    """Newest first."""
    recover_interrupted()
    return newest(limit)


def recover_interrupted() -> list[str]:
    """Mark live cycles that no longer hold the lock as `interrupted`; return their ids."""
    holder = cycle_lock.holder()
    stale = [cid for cid in live_ids() if cid != holder]
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


def is_live(cycle_id: str) -> bool:
    """False once the cycle finished or was interrupted: its leftover jobs then do nothing."""
    return get_cycle(cycle_id).status in LIVE_STATUSES


