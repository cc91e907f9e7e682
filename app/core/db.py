"""Database engine and sessions (SQLite by default, Postgres by URL).

Postgres: a bounded pool (`DATABASE_POOL_SIZE` + `DATABASE_MAX_OVERFLOW`, a caller waits at most
`DATABASE_POOL_WAIT_SECONDS` for a connection), a connect timeout, a server-side `statement_timeout`, and a
client-side read deadline one second longer, so a server that accepts connections but never answers costs a
bounded wait and an `OperationalError` (a 503 at the HTTP boundary), never a hung thread. Once the server
has failed to answer at all (connect or read deadline), new connections fail at once for
`_BREAKER_SECONDS` instead of queueing behind it: only the calls already waiting pay the deadline.

SQLite: `with_for_update()` does nothing there, so a session that writes can ask for `write=True`, which
begins with `BEGIN IMMEDIATE`: writers are serialised from their first read, as row locks would on Postgres.

`session_scope` commits at the end of the block (the request or job boundary owns the transaction) and then
runs what was registered with `after_commit` (file rewrites, notifications): never before the data is
committed, and never when it was rolled back.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy import event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.pool import QueuePool
from sqlmodel import Session, create_engine

from app.core.config import get_settings
from app.core.logging import get_logger

log = get_logger(__name__)

_engines: dict[str, Engine] = {}
_AFTER_COMMIT = "after_commit"
_IMMEDIATE = "mlpipe_begin_immediate"
_BREAKER_SECONDS = 2.0


def _sqlite_pragmas(dbapi_connection, _record) -> None:  # noqa: ANN001 - DB-API connection
    # Python's sqlite3 begins transactions lazily and never with IMMEDIATE; we issue BEGIN ourselves.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")  # readers never block the writer (API vs worker)
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _sqlite_begin(conn) -> None:  # noqa: ANN001 - SQLAlchemy Connection
    conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get(_IMMEDIATE) else "BEGIN")


class _Breaker:
    """Per database URL: after the server failed to answer at all, callers fail at once for a moment, and
    then one caller at a time tries again (the others keep failing fast until it succeeds)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._until: dict[str, float] = {}

    def trip(self, url: str) -> None:
        with self._lock:
            self._until[url] = time.monotonic() + _BREAKER_SECONDS

    def admit(self, url: str) -> str:
        """"go" (the server answers), "probe" (this caller tries it again) or "refuse" (fail at once)."""
        with self._lock:
            until = self._until.get(url)
            if until is None:
                return "go"
            now = time.monotonic()
            if now < until:
                return "refuse"
            self._until[url] = now + 30.0  # this caller probes; the others fail fast until it knows
            return "probe"

    def close(self, url: str) -> None:
        with self._lock:
            self._until.pop(url, None)

    def refuse(self) -> PoolTimeoutError:
        return PoolTimeoutError(
            f"the database did not answer a moment ago; not waiting on it (retry in {_BREAKER_SECONDS:g} s)"
        )


_breaker = _Breaker()


def _trip(url: str) -> None:
    _breaker.trip(url)


class _TimedConnection(psycopg.Connection):
    """A psycopg connection that stops waiting for an answer after `read_timeout` seconds.

    libpq has no read timeout, and `statement_timeout` is enforced by the server, which a hung server
    does not do. On expiry the connection is closed (it is in an unknown state) and the pool discards it.
    The pool's liveness ping (`;`) gets `ping_timeout` instead: a connection that does not answer it in a
    second is as good as dead.
    """

    read_timeout: float = 16.0
    ping_timeout: float = 1.0
    url: str = ""
    _pinging: bool = False

    def wait(self, gen: Any, interval: float = 0.1, timeout: float | None = None) -> Any:
        deadline = self.ping_timeout if self._pinging else self.read_timeout
        try:
            return super().wait(gen, interval, deadline if timeout is None else timeout)
        except psycopg.errors.OperationalError as exc:
            if type(exc).__name__ != "_WaitTimeout":
                raise
            self.pgconn.finish()
            _trip(self.url)
            raise psycopg.OperationalError(
                f"the database did not answer within {deadline:g} s; connection closed"
            ) from None


class _PingAwareCursor(psycopg.Cursor):
    def execute(self, query: Any, *args: Any, **kwargs: Any) -> Any:
        conn = self.connection
        conn._pinging = query == ";"  # SQLAlchemy's pre-ping statement for psycopg
        try:
            return super().execute(query, *args, **kwargs)
        finally:
            conn._pinging = False


def _postgres_engine(url: str) -> Engine:
    settings = get_settings()
    statement_ms = int(settings.database_statement_timeout_seconds * 1000)
    timed = type("TimedConnection", (_TimedConnection,),
                 {"read_timeout": settings.database_statement_timeout_seconds + 1.0, "url": url})
    pool = type("BreakerPool", (QueuePool,), {"connect": _breaker_connect(url)})
    engine = create_engine(
        url,
        poolclass=pool,
        pool_pre_ping=True,  # a pooled connection the server dropped is replaced, not handed out
        pool_size=settings.database_pool_size,
        max_overflow=settings.database_max_overflow,
        pool_timeout=settings.database_pool_wait_seconds,
        connect_args={
            "connect_timeout": settings.database_connect_timeout_seconds,
            "options": f"-c statement_timeout={statement_ms}",
            "cursor_factory": _PingAwareCursor,
        },
    )

    @event.listens_for(engine, "do_connect")
    def _connect(_dialect, _record, cargs, cparams):  # noqa: ANN001, ANN202 - SQLAlchemy's event signature
        try:
            return timed.connect(*cargs, **cparams)
        except psycopg.errors.ConnectionTimeout:
            _trip(url)
            raise

    return engine


def _breaker_connect(url: str) -> Any:
    """QueuePool.connect behind the breaker: a checkout (and its ping) never waits on a silent server."""

    def connect(self: QueuePool) -> Any:
        verdict = _breaker.admit(url)
        if verdict == "refuse":
            raise _breaker.refuse()
        try:
            connection = QueuePool.connect(self)
        except Exception:
            if verdict == "probe":
                _trip(url)  # still silent (a silence found by a ping or a connect trips it anyway)
            raise
        if verdict == "probe":
            _breaker.close(url)
        return connection

    return connect


def get_engine(url: str | None = None) -> Engine:
    url = url or get_settings().resolved_database_url
    engine = _engines.get(url)
    if engine is None:
        parsed = make_url(url)
        if parsed.get_backend_name() == "sqlite":
            if parsed.database:
                Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
            engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
            event.listen(engine, "connect", _sqlite_pragmas)
            event.listen(engine, "begin", _sqlite_begin)
        else:
            engine = _postgres_engine(url)
        _engines[url] = engine
    return engine


def _forget_pools_in_child() -> None:
    """A forked process (an RQ work horse) must not reuse its parent's pooled connections: their sockets
    are shared, and a horse killed mid-transaction would hand the next one an aborted transaction."""
    for engine in _engines.values():
        engine.dispose(close=False)


os.register_at_fork(after_in_child=_forget_pools_in_child)


def dispose_engines() -> None:
    for engine in _engines.values():
        engine.dispose()
    _engines.clear()


def after_commit(session: Session, action: Callable[[], None]) -> None:
    """Run `action` once the session's transaction has committed (never if it rolls back)."""
    session.info.setdefault(_AFTER_COMMIT, []).append(action)


@contextmanager
def session_scope(engine: Engine | None = None, *, write: bool = False) -> Iterator[Session]:
    """A session that commits on success and rolls back on any error: the caller's boundary owns it.

    `write=True` serialises this transaction against other writers from its start (SQLite: BEGIN
    IMMEDIATE; Postgres already locks the rows a writer selects `FOR UPDATE`).
    """
    engine = engine or get_engine()
    if write and engine.dialect.name == "sqlite":
        engine = engine.execution_options(**{_IMMEDIATE: True})
    with Session(engine, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.info.pop(_AFTER_COMMIT, None)
            session.rollback()
            raise
        for action in session.info.pop(_AFTER_COMMIT, []):
            try:
                action()
            except Exception as exc:  # noqa: BLE001 - the data is committed; a follow-up never undoes it
                log.warning("after_commit_failed", action=getattr(action, "__name__", "?"), error=str(exc))
