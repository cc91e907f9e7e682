"""One cycle at a time: a Redis lock for speed, a fencing token and a heartbeat in the database for truth.

- The lock is a Redis key holding the running cycle's id (SET NX EX), refreshed by the heartbeat of every
  job that works for the cycle, so it lapses `CYCLE_LOCK_TTL_SECONDS` after the last cycle job stopped.
- Each cycle takes a *fencing token* when it is created: one more than the newest, counted in the
  database (`cycle_fence`), so it survives a Redis restart, FLUSHALL or failover. Every write a cycle job
  makes (its row, every model status change) checks, in the same transaction, that its token is still
  the newest; a job whose cycle was superseded is refused (`LockLost`) and stops before writing anything.
- The heartbeat also writes `cycles.heartbeat_ts`. A new cycle may start only when the Redis lock is free
  *and* no live cycle has beaten within `CYCLE_LEASE_SECONDS`: a Redis that lost the lock (restart,
  FLUSHALL, someone's DEL) does not let a second cycle start while a job of the first is alive, and that
  job takes the lock back at its next beat.

A job learns it lost the lock from its heartbeat (another cycle holds the key) or from the token check;
either way `Lease.check` raises before its next write, and `run_stage` ends the job quietly.

Inside one cycle, each job (a build, a retrain, a stage) has its own fencing token too, in the cycle's row
(`results["job_fences"]`): taken by every try as it begins, and bumped when RQ declares a try lost (its
worker stopped beating for JOB_LEASE_SECONDS: killed, or its host cut off; workers.leases). Every write of
a try (the cycle's row, a saved model, a failed model's row, a ranking or retrain plan) checks, in the same
transaction with the row locked, that its token is still the job's newest. So a worker whose link comes
back after its build was retried elsewhere writes nothing: never two live copies of one job writing.
"""

from __future__ import annotations

import contextvars
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from redis import Redis
from sqlalchemy import update
from sqlmodel import Session, select

from app.core.config import get_settings
from app.core.db import session_scope
from app.core.errors import Conflict
from app.core.logging import get_logger
from app.core.redis import get_redis
from app.tables.cycles import Cycle, CycleFence
from app.tables.models import utcnow

log = get_logger(__name__)

FENCE_NAME = "cycle"

_REFRESH = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('expire', KEYS[1], ARGV[2])
end
return 0
"""
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('del', KEYS[1])
end
return 0
"""
# 1: still ours (refreshed); 2: it was gone and is ours again; 0: another cycle holds it
_CLAIM = """
local holder = redis.call('get', KEYS[1])
if holder == ARGV[1] then
  redis.call('expire', KEYS[1], ARGV[2])
  return 1
elseif not holder then
  redis.call('set', KEYS[1], ARGV[1], 'EX', ARGV[2])
  return 2
end
return 0
"""


class LockLost(Conflict):
    """This job's cycle no longer holds the lock (another cycle started, or it was marked over)."""


def lock_key() -> str:
    return f"{get_settings().queue_prefix}:cycle:lock"


def lock_ttl() -> int:
    return get_settings().cycle_lock_ttl_seconds


def _conn(conn: Redis | None) -> Redis:
    return conn if conn is not None else get_redis()


def acquire(cycle_id: str, ttl: int | None = None, conn: Redis | None = None) -> str | None:
    """Take the lock for `cycle_id`; on failure return the id of the cycle that holds it."""
    redis = _conn(conn)
    ttl = ttl or lock_ttl()
    if redis.set(lock_key(), cycle_id, nx=True, ex=ttl):
        return None
    holder_ = redis.get(lock_key())
    if holder_ is None:  # expired between the two calls: try once more
        return None if redis.set(lock_key(), cycle_id, nx=True, ex=ttl) else "unknown"
    return holder_.decode()


def holder(conn: Redis | None = None) -> str | None:
    """The id of the cycle holding the lock, or None."""
    value = _conn(conn).get(lock_key())
    return value.decode() if value is not None else None


def refresh(cycle_id: str, ttl: int | None = None, conn: Redis | None = None) -> bool:
    """Extend the lock if `cycle_id` still holds it; False means it was lost (expired or taken over)."""
    return bool(_conn(conn).eval(_REFRESH, 1, lock_key(), cycle_id, ttl or lock_ttl()))


def release(cycle_id: str, conn: Redis | None = None) -> bool:
    """Let the lock go. Inside a job's lease, no later heartbeat of that job takes it back (the job that
    finished a cycle still runs its last bookkeeping while its heartbeat thread is alive)."""
    lease = current_lease(cycle_id)
    if lease is None:
        return bool(_conn(conn).eval(_RELEASE, 1, lock_key(), cycle_id))
    with lease.claiming:
        lease.ended = True
        return bool(_conn(conn).eval(_RELEASE, 1, lock_key(), cycle_id))


# ---- the fencing token -----------------------------------------------------------------------------------
def newest_fence(session: Session, *, for_update: bool = False) -> int:
    """The newest token handed out, read in the caller's transaction and locked against a new cycle's
    (FOR SHARE, or FOR UPDATE when taking one; SQLite's write sessions are serialised already)."""
    stmt = select(CycleFence).where(CycleFence.name == FENCE_NAME)
    stmt = stmt.with_for_update() if for_update else stmt.with_for_update(read=True)
    row = session.exec(stmt).first()
    if row is None:
        row = CycleFence(name=FENCE_NAME, token=0)
        session.add(row)
        session.flush()
    return int(row.token)


def take_fence(session: Session) -> int:
    """One more than the newest token, in the caller's transaction (the one that creates the cycle)."""
    token = newest_fence(session, for_update=True) + 1
    session.execute(update(CycleFence).where(CycleFence.name == FENCE_NAME).values(token=token))
    return token


def lease_fresh(cycle: Cycle, now: float | None = None) -> bool:
    """A job of this cycle beat within CYCLE_LEASE_SECONDS (a cycle not yet begun counts from creation)."""
    beat = cycle.heartbeat_ts or cycle.created_ts
    now = time.time() if now is None else now
    return beat is not None and now - beat.timestamp() < get_settings().cycle_lease_seconds


# ---- the lease a running job holds -----------------------------------------------------------------------
JOB_FENCES = "job_fences"


def job_fence(cycle: Cycle, job: str) -> int:
    """The newest token of one job of the cycle (0 before its first try)."""
    return int((cycle.results.get(JOB_FENCES) or {}).get(job, 0))


def bump_job_fence(cycle: Cycle, job: str) -> int:
    """Inside a locked update of the cycle's row: a new token for `job` (a try begins, or one was lost);
    every older try of it is fenced out from now on."""
    fences = dict(cycle.results.get(JOB_FENCES) or {})
    fences[job] = int(fences.get(job, 0)) + 1
    cycle.results[JOB_FENCES] = fences
    return fences[job]


@dataclass
class Lease:
    """What a cycle job holds while it works: its cycle, its token, and whether it was lost."""

    cycle_id: str
    fence: int | None
    job: str | None = None  # this job's label and its own token, once its try has begun (`own_job`)
    job_token: int | None = None
    lost: threading.Event = field(default_factory=threading.Event)
    reason: str = ""
    ended: bool = False  # this job finished or failed the cycle: its last bookkeeping may still be written
    claiming: threading.Lock = field(default_factory=threading.Lock)  # a beat's claim vs the release

    def lose(self, reason: str) -> None:
        if not self.lost.is_set():
            self.reason = reason
            self.lost.set()
            log.warning("cycle lock lost", cycle_id=self.cycle_id, reason=reason)

    def check(self) -> None:
        """Raise `LockLost` if this job must not write any more."""
        if self.lost.is_set():
            raise LockLost(f"cycle {self.cycle_id} lost its lock ({self.reason}); this job stops here")

    def check_fence(self, session: Session) -> None:
        """In a write transaction: this cycle's token is still the newest and this try still owns its job
        (else `LockLost`). Locks the cycle's row until the transaction ends, so no new try of the job begins
        (nor is one declared lost) before this write commits."""
        self.check_cycle_token(session)
        if self.job_token is not None:
            row = session.exec(select(Cycle).where(Cycle.id == self.cycle_id).with_for_update()).first()
            self.check_job(row)

    def check_cycle_token(self, session: Session) -> None:
        """In a write transaction: this cycle's token is still the newest (else `LockLost`)."""
        self.check()
        if self.fence is None:  # a cycle created before tokens existed
            return
        newest = newest_fence(session)
        if newest != self.fence:
            self.lose(f"its fencing token {self.fence} is stale: cycle token {newest} was handed out since")
            self.check()

    def check_job(self, cycle: Cycle | None) -> None:
        """On the cycle's row (locked by the caller): this try's job token is still the newest."""
        if self.job is None or self.job_token is None or cycle is None:
            return
        newest = job_fence(cycle, self.job)
        if newest != self.job_token:
            self.lose(f"this try of {self.job} (token {self.job_token}) was superseded (token {newest}): "
                      "it was declared lost (its worker silent past JOB_LEASE_SECONDS) or failed, and the "
                      "job was retried")
            self.check()


_current: contextvars.ContextVar[Lease | None] = contextvars.ContextVar("cycle_lease", default=None)


def current_lease(cycle_id: str | None = None) -> Lease | None:
    """The lease of the job running in this context (for `cycle_id`, when given)."""
    lease = _current.get()
    if lease is not None and cycle_id is not None and lease.cycle_id != cycle_id:
        return None
    return lease


def check_lease(cycle_id: str) -> None:
    """Before a write outside the cycle's row (an event, a saved model): stop if the lock was lost."""
    lease = current_lease(cycle_id)
    if lease is not None:
        lease.check()


def write_fence(cycle_id: str) -> Callable[[Session], None] | None:
    """What a write outside the cycle's row calls inside its own transaction (`save_model(fence=...)`):
    the running job's `check_fence`, or None outside a cycle job."""
    lease = current_lease(cycle_id)
    return lease.check_fence if lease is not None else None


def _claim(lease: Lease, redis: Redis) -> None:
    """Refresh the Redis lock, or take it back if Redis lost it and no newer cycle exists."""
    if lease.fence is not None or lease.job_token is not None:
        with session_scope() as session:
            if lease.fence is not None:
                newest = newest_fence(session)
                if newest != lease.fence:
                    lease.lose(f"a newer cycle (token {newest}) started")
                    return
            if lease.job_token is not None:  # learn early that this try was declared lost (no lock: a hint)
                try:
                    lease.check_job(session.get(Cycle, lease.cycle_id))
                except LockLost:
                    return
    with lease.claiming:
        if lease.ended:  # released by this job: a beat after the release must not take the lock back
            return
        outcome = int(redis.eval(_CLAIM, 1, lock_key(), lease.cycle_id, lock_ttl()))
    if outcome == 0 and lease.fence is None:
        lease.lose(f"cycle {holder(redis)} holds the lock now")
    elif outcome == 0:
        # another start holds the key for a moment, but the token is still ours: it will be refused (our
        # heartbeat is fresh) and let go; the next beat takes the lock back
        log.warning("cycle lock briefly held by another start", cycle_id=lease.cycle_id, holder=holder(redis))
    elif outcome == 2:
        log.warning("cycle lock was gone from Redis and is taken back", cycle_id=lease.cycle_id)


def _beat(lease: Lease) -> None:
    with session_scope() as session:
        session.execute(update(Cycle).where(Cycle.id == lease.cycle_id).values(heartbeat_ts=utcnow()))


@contextmanager
def hold(cycle_id: str, fence: int | None, every: float | None = None) -> Iterator[Lease]:
    """Hold the cycle's lock while the body runs: claim it now, beat every CYCLE_HEARTBEAT_SECONDS.

    Raises `LockLost` at once if another cycle holds it. A Redis hiccup during a beat is retried at the
    next one (the lock outlives a few missed beats), never fatal by itself.
    """
    lease = Lease(cycle_id, fence)
    redis = get_redis()
    _claim(lease, redis)
    lease.check()
    _beat(lease)
    every = every or get_settings().cycle_heartbeat_seconds
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(every) and not lease.lost.is_set() and not lease.ended:
            try:
                _claim(lease, redis)
                if not lease.lost.is_set():
                    _beat(lease)
            except Exception as exc:  # noqa: BLE001 - Redis or the database hiccupped: try at the next beat
                log.warning("cycle heartbeat failed", cycle_id=cycle_id, error=str(exc))

    thread = threading.Thread(target=beat, name=f"cycle-lock-{cycle_id[:8]}", daemon=True)
    thread.start()
    token = _current.set(lease)
    try:
        yield lease
    finally:
        _current.reset(token)
        stop.set()
        thread.join(timeout=5)
