"""DESIGN 2's catch-up ingest, through a real cycle (real Redis, a real RQ worker).

csv: the cycle ingests nothing. exchange down: a warning, and the cycle goes on with the stored candles
while they are fresh; older than STALENESS_LIMIT_MINUTES, the cycle fails with the reason.
"""

from __future__ import annotations

import time
from pathlib import Path

import ccxt
import pytest
from sqlmodel import select

from app.core.config import reset_settings
from app.core.db import session_scope
from app.data.candles import count_candles, last_candle_ts, store_candles
from app.data.simulator import MarketSimulator
from app.data.sources.exchange import ExchangeSource
from app.services.cycle import get_cycle, start_cycle
from app.services.cycle import lock as cycle_lock
from app.tables.models import ModelRecord
from tests.cycle.helpers import definition, run_workers, seed_candles

SYMBOL = "BTC-USDT"
BAR = 60_000


def _options() -> dict:
    return {"definitions": [definition("xgboost", "catchup_xgb")], "window_days": 1, "symbols": [SYMBOL]}


def _candles_ending_minutes_ago(minutes: int, bars: int = 1440) -> int:
    """A day of simulated candles whose newest opened `minutes` ago; returns that newest open time."""
    newest = int(time.time() * 1000) // BAR * BAR - minutes * BAR
    frames = MarketSimulator(3).generate([SYMBOL], newest - (bars - 1) * BAR, bars)
    store_candles(SYMBOL, frames[SYMBOL], "simulated")
    return newest


def _models() -> list[ModelRecord]:
    with session_scope() as session:
        return list(session.exec(select(ModelRecord)).all())


@pytest.fixture()
def exchange_down(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """MARKET_DATA_SOURCE=exchange on a real ccxt binance client whose every HTTP request fails with
    ccxt.NetworkError; returns the backoff sleeps the source asked for."""
    monkeypatch.setenv("MARKET_DATA_SOURCE", "exchange")
    reset_settings()
    sleeps: list[float] = []

    def down(url: str, method: str = "GET", headers=None, body=None):  # noqa: ANN001, ANN202
        raise ccxt.NetworkError(f"binance {method} {url} Connection refused")

    def source(exchange_id: str) -> ExchangeSource:
        client = ccxt.binance({"enableRateLimit": False})
        client.fetch = down
        return ExchangeSource(exchange_id, client, max_tries=3, backoff_s=0.5, sleep=sleeps.append)

    monkeypatch.setattr("app.services.ingest.ExchangeSource", source)
    return sleeps


def test_with_csv_the_catch_up_ingests_nothing_and_the_cycle_uses_the_stored_candles(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seed_candles(days=1, symbols=[SYMBOL])  # long past any staleness limit: csv does not judge age
    before = count_candles(SYMBOL)

    def no_exchange(*_args, **_kwargs):  # noqa: ANN002, ANN003, ANN202
        raise AssertionError("the csv catch-up must not reach an exchange")

    monkeypatch.setattr("app.services.ingest.ExchangeSource", no_exchange)
    cycle = start_cycle("operator", _options())
    run_workers()

    done = get_cycle(cycle.id)
    assert done.status == "succeeded", done.errors
    assert done.results["ingest"]["source"] == "csv" and done.results["ingest"]["added"] == 0
    assert done.results["ingest"]["warning"] is None and done.errors == []
    assert count_candles(SYMBOL) == before
    assert done.results["window"]["end_ms"] == last_candle_ts(SYMBOL)
    assert [m.status for m in _models()] == ["active"]


def test_exchange_failure_is_a_warning_and_the_cycle_goes_on_with_fresh_stored_candles(
    exchange_down: list[float],
) -> None:
    newest = _candles_ending_minutes_ago(60)  # within the default 180 min limit
    before = count_candles(SYMBOL)

    cycle = start_cycle("operator", _options())
    run_workers()

    done = get_cycle(cycle.id)
    assert done.status == "succeeded", done.errors
    assert exchange_down == [0.5, 1.0], "the source should retry with backoff before giving up"
    warning = done.results["ingest"]["warning"]
    assert "NetworkError" in warning and "after 3 tries" in warning
    [entry] = done.errors
    assert entry["stage"] == "ingest" and entry["level"] == "warning" and entry["message"] == warning
    assert count_candles(SYMBOL) == before
    assert done.results["window"]["end_ms"] == newest
    [model] = _models()
    assert model.status == "active" and model.training["window_end_ms"] == newest
    assert done.progress["catchup_xgb"]["state"] == "succeeded"


def test_exchange_failure_with_candles_older_than_the_staleness_limit_fails_the_cycle(
    exchange_down: list[float], monkeypatch: pytest.MonkeyPatch, store_dir: Path
) -> None:
    monkeypatch.setenv("STALENESS_LIMIT_MINUTES", "30")
    reset_settings()
    _candles_ending_minutes_ago(60)  # the same candles as above, now beyond the limit

    cycle = start_cycle("operator", _options())
    run_workers()

    done = get_cycle(cycle.id)
    assert done.status == "failed"
    [entry] = done.errors
    assert entry["stage"] == "ingest" and entry["level"] == "error"
    message = entry["message"]
    assert "NetworkError" in message
    assert "min old" in message and "staleness limit of 30 min" in message
    assert "STALENESS_LIMIT_MINUTES" in message
    assert done.progress == {} and done.finished_ts is not None
    assert _models() == [] and not list(store_dir.glob("model_*")), "nothing may be built on stale data"
    assert cycle_lock.holder() is None, "a failed cycle must release its lock"
    assert start_cycle("operator", _options()).status == "queued"
