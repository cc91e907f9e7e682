"""Database engine and sessions (SQLite by default, Postgres by URL).

Postgres: a bounded pool (`DATABASE_POOL_SIZE` + `DATABASE_MAX_OVERFLOW`, a caller waits at most
`DATABASE_POOL_WAIT_SECONDS` for a connection), a connect timeout, a server-side `statement_timeout`, and a
client-side read deadline one second longer, so a server that accepts connections but never answers costs a
bounded wait and an `OperationalError` (a 503 at the HTTP boundary), never a hung thread.

SQLite: `with_for_update()` does nothing there, so a session that writes can ask for `write=True`, which
begins with `BEGIN IMMEDIATE`: writers are serialised from their first read, as row locks would on Postgres.

`session_scope` commits at the end of the block (the request or job boundary owns the transaction) and then
runs what was registered with `after_commit` (file rewrites, notifications): never before the data is
committed, and never when it was rolled back.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy import event
from sqlalchemy.engine import Engine, make_url
from sqlmodel import Session, create_engine

from app.core.config import get_settings
from app.core.logging import get_logger

log = get_logger(__name__)

_engines: dict[str, Engine] = {}
_AFTER_COMMIT = "after_commit"
_IMMEDIATE = "mlpipe_begin_immediate"


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


class _TimedConnection(psycopg.Connection):
    """A psycopg connection that stops waiting for an answer after `read_timeout` seconds.

    libpq has no read timeout, and `statement_timeout` is enforced by the server, which a hung server
    does not do. On expiry the connection is closed (it is in an unknown state) and the pool discards it.
    """

    read_timeout: float = 16.0

    def wait(self, gen: Any, interval: float = 0.1, timeout: float | None = None) -> Any:
        try:
            return super().wait(gen, interval, self.read_timeout if timeout is None else timeout)
        except psycopg.errors.OperationalError as exc:
            if type(exc).__name__ != "_WaitTimeout":
                raise
            self.pgconn.finish()
            raise psycopg.OperationalError(
                f"the database did not answer within {self.read_timeout:g} s; connection closed"
            ) from None


def _postgres_engine(url: str) -> Engine:
    settings = get_settings()
    statement_ms = int(settings.database_statement_timeout_seconds * 1000)
    timed = type("TimedConnection", (_TimedConnection,),
                 {"read_timeout": settings.database_statement_timeout_seconds + 1.0})
    engine = create_engine(
        url,
        pool_pre_ping=True,
        pool_size=settings.database_pool_size,
        max_overflow=settings.database_max_overflow,
        pool_timeout=settings.database_pool_wait_seconds,
        connect_args={
            "connect_timeout": settings.database_connect_timeout_seconds,
            "options": f"-c statement_timeout={statement_ms}",
        },
    )

    @event.listens_for(engine, "do_connect")
    def _connect(_dialect, _record, cargs, cparams):  # noqa: ANN001, ANN202 - SQLAlchemy's event signature
        return timed.connect(*cargs, **cparams)

    return engine


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
