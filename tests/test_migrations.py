"""Alembic migrations: up, down and up again on SQLite and Postgres, and they match the tables."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect, pool, text
from sqlmodel import SQLModel

import app.tables  # noqa: F401 - every table on SQLModel.metadata
from app.services.bootstrap import alembic_config

PG_HOST, PG_PORT = "127.0.0.1", 5432


def _pg_answers() -> bool:
    try:
        with socket.create_connection((PG_HOST, PG_PORT), timeout=0.5):
            return True
    except OSError:
        return False


def _pg_url(db: str) -> str:
    return f"postgresql+psycopg://{os.environ.get('PGUSER', 'postgres')}@{PG_HOST}:{PG_PORT}/{db}"


@pytest.fixture()
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'migrations.db'}"


@pytest.fixture()
def postgres_url() -> Iterator[str]:
    """A scratch database on the local Postgres, dropped afterwards."""
    if not _pg_answers():
        pytest.skip(f"no Postgres on {PG_HOST}:{PG_PORT}")
    name = f"mlpipe_migrations_{uuid.uuid4().hex[:10]}"
    admin = create_engine(_pg_url("postgres"), isolation_level="AUTOCOMMIT", poolclass=pool.NullPool)
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield _pg_url(name)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _tables(url: str) -> set[str]:
    engine = create_engine(url, poolclass=pool.NullPool)
    try:
        return set(inspect(engine).get_table_names()) - {"alembic_version"}
    finally:
        engine.dispose()


def _revision(url: str) -> str | None:
    engine = create_engine(url, poolclass=pool.NullPool)
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    finally:
        engine.dispose()


def _up_down_up(url: str) -> None:
    cfg = alembic_config(url)
    head = ScriptDirectory.from_config(cfg).get_current_head()

    command.upgrade(cfg, "head")
    assert _revision(url) == head
    created = _tables(url)
    assert "candles" in created

    command.downgrade(cfg, "base")
    assert _revision(url) is None
    assert _tables(url) == set()

    command.upgrade(cfg, "head")  # a downgrade must leave nothing behind that blocks the next upgrade
    assert _revision(url) == head
    assert _tables(url) == created


def test_migrations_go_up_down_and_up_again_on_sqlite(sqlite_url: str) -> None:
    _up_down_up(sqlite_url)


def test_migrations_go_up_down_and_up_again_on_postgres(postgres_url: str) -> None:
    _up_down_up(postgres_url)


@pytest.mark.parametrize("backend", ["sqlite_url", "postgres_url"])
def test_migrations_create_exactly_the_tables_the_models_declare(
    backend: str, request: pytest.FixtureRequest
) -> None:
    """Fails when a table changed without a migration: regenerate with the command in migrations/env.py."""
    url = request.getfixturevalue(backend)
    command.upgrade(alembic_config(url), "head")
    engine = create_engine(url, poolclass=pool.NullPool)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            diff = compare_metadata(context, SQLModel.metadata)
    finally:
        engine.dispose()
    assert diff == [], f"models and migrations differ: {diff}"
