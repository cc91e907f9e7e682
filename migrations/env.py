"""Alembic environment: the target schema is `SQLModel.metadata`, i.e. every table in `app.tables`.

The database URL, first found: `alembic -x url=...`, the config's `sqlalchemy.url` (set by
`mlpipe migrate` and the tests), then the app settings (DATABASE_URL, else SQLite under MODEL_STORE_DIR).
Revisions are rendered in batch mode so the same script runs on SQLite (which cannot ALTER most things)
and on Postgres (where batch operations are plain ALTERs). Column types of the app (TypeDecorators such
as sqlmodel's AutoString) are rendered as their SQLAlchemy base type, so revisions never import app code.

Regenerate the initial revision after changing tables (while 0001 is the only one), from the repo root:
    rm -f migrations/versions/0001_initial.py && d=$(mktemp -d) && \
    .venv/bin/alembic -x url=sqlite:///$d/scratch.db revision --autogenerate --rev-id 0001 -m initial
A later change: `alembic -x url=sqlite:///$d/scratch.db upgrade head` on a scratch database first, then
`alembic -x url=... revision --autogenerate --rev-id 0002 -m "<what changed>"`, and read the result.
"""

from __future__ import annotations

import logging
from logging.config import fileConfig
from pathlib import Path
from typing import Any

from alembic import context
from sqlalchemy import create_engine, pool
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.types import TypeDecorator
from sqlmodel import SQLModel

import app.tables  # noqa: F401 - registers every table on SQLModel.metadata
from app.core.config import get_settings

config = context.config
target_metadata = SQLModel.metadata

# Configure logging from alembic.ini only when run as the `alembic` command: inside the app or the tests
# the logging is already set up, and fileConfig would replace it.
if config.config_file_name is not None and not logging.getLogger().handlers:
    fileConfig(config.config_file_name, disable_existing_loggers=False)


def database_url() -> str:
    return (
        context.get_x_argument(as_dictionary=True).get("url")
        or config.get_main_option("sqlalchemy.url")
        or get_settings().resolved_database_url
    )


def render_item(type_: str, obj: Any, autogen_context: Any) -> str | bool:
    """Render app column types as their SQLAlchemy implementation (`sa.DateTime(timezone=True)`...)."""
    if type_ == "type" and isinstance(obj, TypeDecorator) and not obj.__module__.startswith("sqlalchemy"):
        return f"sa.{obj.impl!r}"
    return False


_OPTUNA_TABLES = {
    "studies", "study_directions", "study_user_attributes", "study_system_attributes", "trials",
    "trial_user_attributes", "trial_system_attributes", "trial_params", "trial_values",
    "trial_intermediate_values", "trial_heartbeats", "version_info",
}


def include_object(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
    """Optuna's own tables (beside ours on SQLite; app/services/tuning/storage.py) are not ours to manage."""
    return not (type_ == "table" and reflected and name in _OPTUNA_TABLES)


def _configure(**kwargs: Any) -> None:
    context.configure(
        target_metadata=target_metadata,
        render_as_batch=True,
        compare_type=True,
        render_item=render_item,
        include_object=include_object,
        **kwargs,
    )


def run_migrations_offline() -> None:
    """`alembic upgrade head --sql`: print the SQL instead of running it."""
    _configure(url=database_url(), literal_binds=True, dialect_opts={"paramstyle": "named"})
    with context.begin_transaction():
        context.run_migrations()


def _run(connection: Connection) -> None:
    _configure(connection=connection)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:  # a caller (a test) passed its own connection
        _run(connection)
        return
    url = make_url(database_url())
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, poolclass=pool.NullPool)
    try:
        with engine.connect() as conn:
            _run(conn)
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
