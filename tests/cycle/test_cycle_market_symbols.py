"""A cross-asset definition in the real cycle: it trains on the cycle's symbols and records them; a later
cycle that lacks one of them leaves that model out of the champion decision instead of failing."""

from __future__ import annotations

from pathlib import Path

from app.services.cycle import get_cycle, start_cycle
from app.services.models import list_models
from tests.cycle.helpers import definition, run_workers, seed_candles

SYMBOLS = ["BTC-USDT", "ETH-USDT", "XRP-USDT"]
CROSS = ["returns", "btc_lag_5", "btc_beta_60", "xs_rel_returns_5", "htf_returns_15m", "vol_ratio_10_60"]


def _run(options: dict) -> dict:
    cycle = start_cycle("operator", {"window_days": 1.5, "ingest": False, **options})
    run_workers()
    done = get_cycle(cycle.id)
    assert done.status == "succeeded", done.errors
    return done.results


def test_a_model_whose_market_symbols_the_cycle_lacks_is_skipped_in_ranking(store_dir: Path) -> None:
    seed_candles(days=2, symbols=SYMBOLS)
    cross = {**definition("xgboost", "dir_cross"), "features": CROSS}
    first = _run({"definitions": [cross], "symbols": SYMBOLS})
    champion = first["ranking"]["champions"]["direction"]
    record = next(r for r in list_models(kind="direction") if r.name == champion)
    assert record.family == "dir_cross" and record.training["market_symbols"] == SYMBOLS

    # BTC-USDT is not among this cycle's symbols: the cross-asset champion cannot be scored on its rows
    second = _run({"definitions": [definition("xgboost", "dir_plain")], "symbols": ["ETH-USDT", "XRP-USDT"]})

    ranking = second["ranking"]
    assert champion in ranking["skipped"] and "BTC-USDT" in ranking["skipped"][champion]
    assert ranking["champions"]["direction"].startswith("dir_plain")
