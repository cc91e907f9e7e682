"""GET /features/{symbol} over real HTTP, and the seed's MLEnhancedStrategy example driven through it."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pandas as pd
import pytest

from app.client import Client
from app.features import compute_features, resample
from app.store.cache import get_cache
from tests.api.ml_setup import Trained, api_keys, save, store_all_candles

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "ml_enhanced_strategy.py"


@pytest.fixture()
def setup(trained: Trained, base_url: str) -> Iterator[dict]:
    store_all_candles(trained)
    for family in ("direction_small", "risk_rf"):
        save(trained, family)
    get_cache().reload("test")
    keys = api_keys()
    yield {"url": base_url, "keys": keys, "trained": trained}
    get_cache().reload("test")


def test_features_are_the_numbers_computed_from_the_stored_candles(setup: dict) -> None:
    raw = setup["trained"].candles["BTC-USDT"]
    candles = pd.DataFrame(raw[["open", "high", "low", "close", "volume"]].to_numpy(),
                           columns=["open", "high", "low", "close", "volume"],
                           index=pd.to_datetime(raw["ts"], unit="ms", utc=True))
    expected = compute_features(resample(candles, "5m"), ["rsi_14"])["rsi_14"].iloc[-3:]

    params = {"names": "rsi_14", "timeframe": "5m", "bars": 3}
    # the first /features request may wait for the feature processes the API spawns at start (they import
    # the scientific stack: seconds on a loaded machine), so this client waits longer than httpx's 5 s
    r = httpx.get(f"{setup['url']}/features/BTC-USDT", params=params, headers=setup["keys"]["predict"],
                  timeout=60)

    assert r.status_code == 200, r.text
    rows = r.json()["rows"]
    assert [row["rsi_14"] for row in rows] == pytest.approx(expected.to_list(), rel=1e-6)
    assert rows[-1]["ts"] == expected.index[-1].isoformat().replace("+00:00", "Z")


@pytest.mark.parametrize(
    ("path", "params", "status", "says"),
    [
        ("/features/BTC-USDT", {"names": "rsi_14,no_such_thing"}, 422, "rsi_"),
        ("/features/DOGE-USDT", {"names": "rsi_14"}, 404, "mlpipe ingest"),
        ("/features/BTC-USDT", {"names": "rsi_14", "timeframe": "2m"}, 422, "timeframe"),
    ],
)
def test_bad_feature_requests_say_what_to_fix(setup: dict, path: str, params: dict, status: int,
                                              says: str) -> None:
    r = httpx.get(setup["url"] + path, params=params, headers=setup["keys"]["predict"], timeout=60)

    assert r.status_code == status, r.text
    assert says in r.text


def _strategy_module():
    spec = importlib.util.spec_from_file_location("ml_enhanced_strategy", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_the_example_strategy_trades_only_when_the_models_confirm(setup: dict) -> None:
    example = _strategy_module()
    key = setup["keys"]["predict"]["X-API-Key"]
    with Client(setup["url"], api_key=key) as client:
        strategy = example.MLEnhancedStrategy(client, max_risk=101)  # any risk passes: direction decides
        direction = client.predict("direction", symbol="BTC-USDT")["direction"]
        oversold, overbought = strategy.detect("BTC-USDT", 20.0), strategy.detect("BTC-USDT", 80.0)
        neutral = strategy.detect("BTC-USDT", 50.0)
        technical = strategy.technical_rsi("BTC-USDT")

    taken = oversold if direction == "UP" else overbought
    refused = overbought if direction == "UP" else oversold
    assert taken is not None and taken.signal == ("LONG" if direction == "UP" else "SHORT")
    assert taken.details["ml_direction"] == direction and 0 <= taken.details["risk_score"] <= 100
    assert refused is None and neutral is None
    assert 0 <= technical <= 100
