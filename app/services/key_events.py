"""Key revocations reach every API process at once: `revoke` publishes on Redis, each process listens.

Without this, another process (a second `--workers` process, or another machine) keeps a verified key for
up to `keys.CACHE_TTL_SECONDS`. Each API process runs one watcher thread: a message on
`<prefix>:keys:events`, or a change of the counter `<prefix>:keys:version` (a message missed while Redis
was away), empties its key cache, so the next request re-reads the keys from the database.
"""

from __future__ import annotations

import threading

from redis.exceptions import RedisError

from app.core.background import BackgroundLoop
from app.core.config import get_settings
from app.core.logging import get_logger

log = get_logger(__name__)
POLL_SECONDS = 1.0


def _channel() -> str:
    return f"{get_settings().queue_prefix}:keys:events"


def _version_key() -> str:
    return f"{get_settings().queue_prefix}:keys:version"


def notify_keys_changed(prefix: str) -> None:
    """Tell every API process that a key was revoked. Never raises: the database is the truth, and
    processes re-read it within the cache TTL anyway."""
    from app.core.redis import get_redis

    try:
        redis = get_redis()
        redis.incr(_version_key())
        redis.publish(_channel(), prefix)
    except RedisError as exc:
        log.warning("key_revocation_not_published", prefix=prefix, error=str(exc))


def _watch(stopping: threading.Event) -> None:
    from app.core.redis import get_redis
    from app.services import keys

    pubsub = None
    seen: bytes | None = None
    while not stopping.is_set():
        try:
            if pubsub is None:
                pubsub = get_redis().pubsub(ignore_subscribe_messages=True)
                pubsub.subscribe(_channel())
                seen = get_redis().get(_version_key())
            message = pubsub.get_message(timeout=POLL_SECONDS)
            version = get_redis().get(_version_key())
            if message is not None or version != seen:
                seen = version
                keys.clear_cache()
        except RedisError as exc:
            log.warning("key_watch_redis_error", error=str(exc))
            pubsub = None
            stopping.wait(POLL_SECONDS)
    if pubsub is not None:
        try:
            pubsub.close()
        except RedisError:
            pass


watcher = BackgroundLoop("key-revocation-watch", _watch)
