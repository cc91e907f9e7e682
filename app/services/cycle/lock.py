"""The one-cycle-at-a-time lock: a Redis key holding the running cycle's id, with an expiry.

Taken with SET NX EX; every cycle job keeps it alive with a heartbeat thread while it works, so it lives
as long as the cycle makes progress and lapses `ttl` seconds after the last cycle job stopped (a crashed
cycle never blocks the next one for longer than that). Refresh and release are compare-and-set (Lua), so
a cycle can never extend or drop another cycle's lock.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from redis import Redis

from app.core.config import get_settings
from app.core.redis import get_redis

LOCK_TTL_SECONDS = 900  # > RQ maintenance (600 s) + job heartbeat: an abandoned build is retried in time
HEARTBEAT_SECONDS = 15

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


def lock_key() -> str:
    return f"{get_settings().queue_prefix}:cycle:lock"


def _conn(conn: Redis | None) -> Redis:
    return conn if conn is not None else get_redis()


def acquire(cycle_id: str, ttl: int = LOCK_TTL_SECONDS, conn: Redis | None = None) -> str | None:
    """Take the lock for `cycle_id`; on failure return the id of the cycle that holds it."""
    redis = _conn(conn)
    if redis.set(lock_key(), cycle_id, nx=True, ex=ttl):
        return None
    holder = redis.get(lock_key())
    if holder is None:  # expired between the two calls: try once more
        return None if redis.set(lock_key(), cycle_id, nx=True, ex=ttl) else "unknown"
    return holder.decode()


def holder(conn: Redis | None = None) -> str | None:
    """The id of the cycle holding the lock, or None."""
    value = _conn(conn).get(lock_key())
    return value.decode() if value is not None else None


def refresh(cycle_id: str, ttl: int = LOCK_TTL_SECONDS, conn: Redis | None = None) -> bool:
    """Extend the lock if `cycle_id` still holds it; False means it was lost (expired or taken over)."""
    return bool(_conn(conn).eval(_REFRESH, 1, lock_key(), cycle_id, ttl))


def release(cycle_id: str, conn: Redis | None = None) -> bool:
    return bool(_conn(conn).eval(_RELEASE, 1, lock_key(), cycle_id))


@contextmanager
def heartbeat(
    cycle_id: str, ttl: int = LOCK_TTL_SECONDS, every: float = HEARTBEAT_SECONDS, conn: Redis | None = None
) -> Iterator[threading.Event]:
    """Keep the lock alive while the body runs; the yielded event is set if the lock was lost."""
    stop, lost = threading.Event(), threading.Event()
    redis = _conn(conn)

    def beat() -> None:
        while not stop.wait(every):
            try:
                if not refresh(cycle_id, ttl, redis):
                    lost.set()
                    return
            except Exception:  # noqa: BLE001 - a Redis hiccup must not kill the job; try again next beat
                continue

    if not refresh(cycle_id, ttl, redis):
        lost.set()
    thread = threading.Thread(target=beat, name=f"cycle-lock-{cycle_id[:8]}", daemon=True)
    thread.start()
    try:
        yield lost
    finally:
        stop.set()
        thread.join(timeout=5)
