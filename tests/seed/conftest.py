"""A real stack for the seed guide's walk-through: this run's database and Redis, a fresh store, and
simulated candles ingested as `mlpipe ingest --source simulated` would."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

SYMBOLS = ["BTC-USDT", "ETH-USDT", "XRP-USDT"]
T0 = 1_764_547_200_000  # 2025-12-01 00:00 UTC: "now" for the first ingest
HOUR_MS = 3_600_000


def ingest_until(now_ms: int, days: float = 3.0) -> None:
    from app.services.ingest import ingest

    ingest("simulated", SYMBOLS, days=days, now_ms=now_ms)


@pytest.fixture(scope="module")
def walkthrough(
    database_url: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict]:
    """One store for a module's blocks, which build on each other; emptied before and after."""
    from app.core.config import reset_settings
    from app.store.cache import reset_cache
    from tests.conftest import clean_services

    clean_services(database_url, redis_url)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MODEL_STORE_DIR", str(tmp_path_factory.mktemp("seed_store")))
        patch.setenv("SYMBOLS", ",".join(SYMBOLS))
        patch.setenv("MARKET_DATA_SOURCE", "simulated")
        reset_settings()
        reset_cache()
        ingest_until(T0)
        namespace: dict[str, Any] = {"__name__": "seed_guide"}
        yield namespace
    clean_services(database_url, redis_url)
    reset_settings()
    reset_cache()
