from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def csv_source(store_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The cycle's catch-up ingest does nothing with `csv`: the test alone decides which candles exist."""
    from app.core.config import reset_settings

    monkeypatch.setenv("MARKET_DATA_SOURCE", "csv")
    monkeypatch.setenv("SYMBOLS", "BTC-USDT,ETH-USDT,XRP-USDT")
    reset_settings()
    yield store_dir
    reset_settings()
