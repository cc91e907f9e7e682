import pandas as pd

from app.data.candles import count_candles, last_candle_ts, load_candles, store_candles
from app.data.frames import index_ms


def _frame(start_ms: int, n: int) -> pd.DataFrame:
    ts = [start_ms + i * 60_000 for i in range(n)]
    return pd.DataFrame({"ts": ts, "open": 10.0, "high": 11.0, "low": 9.0, "close": 10.5, "volume": 1.0})


def test_storing_the_same_candles_twice_adds_nothing_the_second_time():
    assert store_candles("BTC-USDT", _frame(1_700_000_040_000, 10), "csv") == 10
    assert store_candles("BTC-USDT", _frame(1_700_000_040_000, 12), "csv") == 2
    assert count_candles("BTC-USDT") == 12


def test_load_returns_utc_index_oldest_first_and_limit_takes_the_newest():
    store_candles("ETH-USDT", _frame(1_700_000_040_000, 5), "csv")
    frame = load_candles("ETH-USDT", limit=2)
    assert list(index_ms(frame.index)) == [1_700_000_220_000, 1_700_000_280_000]
    assert str(frame.index.tz) == "UTC"
    assert last_candle_ts("ETH-USDT") == 1_700_000_280_000
    assert last_candle_ts("XRP-USDT") is None


def test_newest_candles_of_many_symbols_in_one_query():
    from app.data.candles import last_candle_ts_many

    store_candles("BTC-USDT", _frame(1_700_000_040_000, 5), "csv")
    store_candles("ETH-USDT", _frame(1_700_000_040_000, 3), "csv")
    store_candles("ETH-USDT", _frame(1_700_000_040_000, 3).assign(ts=lambda f: f["ts"] + 10**9), "csv")

    found = last_candle_ts_many(["ETH-USDT", "NOPE-USDT", "BTC-USDT"], chunk=2)

    assert found == {"ETH-USDT": 1_701_000_160_000, "NOPE-USDT": None, "BTC-USDT": 1_700_000_280_000}
    assert found == {s: last_candle_ts(s) for s in found}
