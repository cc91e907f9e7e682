"""Getting a store ready to serve: migrate the database, back-fill simulated history into an empty store."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

from app.core.config import get_settings
from app.core.errors import Unavailable
from app.core.logging import get_logger

log = get_logger(__name__)


def alembic_config(url: str | None = None) -> Config:
    """Alembic's config for this checkout, pointed at `url` (default: the settings' database).

    `alembic.ini` is looked up beside the source tree first (a clone, an editable install), then in the
    working directory (an image that installs the package and keeps the repo as its working directory).
    """
    candidates = [Path(__file__).resolve().parents[2] / "alembic.ini", Path.cwd() / "alembic.ini"]
    ini = next((path for path in candidates if path.is_file()), None)
    if ini is None:
        raise Unavailable(
            f"alembic.ini not found (looked at {', '.join(str(p) for p in candidates)}); "
            "run from the repository root"
        )
    cfg = Config(str(ini))
    # ConfigParser interpolation would treat a '%' in a password as a placeholder.
    cfg.set_main_option("sqlalchemy.url", (url or get_settings().resolved_database_url).replace("%", "%%"))
    return cfg


def migrate(url: str | None = None) -> str | None:
    """Bring the database to the newest schema (idempotent); returns the revision it is at."""
    from alembic.runtime.migration import MigrationContext
    from sqlalchemy import create_engine, pool

    url = url or get_settings().resolved_database_url
    command.upgrade(alembic_config(url), "head")
    engine = create_engine(url, poolclass=pool.NullPool)
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    finally:
        engine.dispose()


def prepare_store() -> str:
    """Make sure the artifact store can be written: the S3 bucket of `MODEL_STORE_URL` is created when it
    is missing (idempotent); returns where artifacts go."""
    from app.store.objects import S3Objects, object_store

    store = object_store()
    if isinstance(store, S3Objects):
        store.ensure_bucket()
    return store.url


def backfill_if_empty(days: int | None = None) -> dict[str, int]:
    """Give a fresh simulated store its history, so models can be trained at once.

    Only symbols with no 1m candles are filled, and only when the source is `simulated`: real sources
    fill themselves through `mlpipe ingest` and the 1-minute tick. Returns rows added per symbol.
    """
    from app.data.candles import count_candles

    settings = get_settings()
    if settings.market_data_source != "simulated":
        return {}
    empty = [symbol for symbol in settings.symbols if count_candles(symbol) == 0]
    if not empty:
        return {}
    from app.services.ingest import ingest

    days = settings.backfill_days if days is None else days
    log.info("backfill", symbols=empty, days=days, source="simulated")
    ingest("simulated", empty, days=days)
    return {symbol: count_candles(symbol) for symbol in empty}
