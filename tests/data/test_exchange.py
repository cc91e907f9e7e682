import pytest

from app.core.errors import BadInput, Unavailable

T0 = 1_704_067_200_000  # where the recorded candles start (tests/fixtures/exchange)
BAR = 60_000


def test_pages_follow_each_other_until_the_last_complete_candle(recorded_exchange):
    source, http, _ = recorded_exchange
    seen = []
    now = T0 + 250 * BAR + 30_000
    frame = source.fetch_ohlcv("BTC-USDT", T0, now, progress=lambda done, total: seen.append((done, total)))
    assert http.klines_starts() == [T0, T0 + 100 * BAR, T0 + 200 * BAR]
    assert len(frame) == 250  # the candle forming at minute 250 is left out
    assert frame["ts"].iloc[0] == T0 and frame["ts"].iloc[-1] == T0 + 249 * BAR
    assert frame["ts"].diff().dropna().eq(BAR).all()
    assert seen[-1] == (250, 250)
    assert (frame["high"] >= frame[["open", "close"]].max(axis=1)).all()


def test_unified_symbol_goes_to_binance_as_its_market_id(recorded_exchange):
    source, http, _ = recorded_exchange
    source.fetch_ohlcv("btc-usdt", T0, T0 + 50 * BAR)
    assert any("symbol=BTCUSDT" in k for k in http.requests)


def test_rate_limit_and_network_errors_are_retried_with_growing_backoff(recorded_exchange):
    source, http, sleeps = recorded_exchange
    frame = source.fetch_ohlcv("ETH-USDT", T0, T0 + 60 * BAR + 10_000)
    assert len(frame) == 60
    assert http.klines_starts() == [T0, T0, T0]  # 429, connection reset, then the candles
    assert sleeps == [0.5, 1.0]


def test_a_source_that_keeps_failing_gives_up_after_max_tries_with_the_reason(recorded_exchange):
    source, http, sleeps = recorded_exchange
    with pytest.raises(Unavailable, match="(?s)after 4 tries.*overloaded"):
        source.fetch_ohlcv("XRP-USDT", T0, T0 + 60 * BAR)
    assert len(http.klines_starts()) == 4
    assert sleeps == [0.5, 1.0, 2.0]


def test_a_market_the_exchange_does_not_list_is_a_bad_input(recorded_exchange):
    source, http, _ = recorded_exchange
    with pytest.raises(BadInput, match="no market DOGE/USDT"):
        source.fetch_ohlcv("DOGE-USDT", T0, T0 + 60 * BAR)
    assert http.klines_starts() == []


def test_nothing_is_requested_when_no_complete_candle_is_due(recorded_exchange):
    source, http, _ = recorded_exchange
    frame = source.fetch_ohlcv("BTC-USDT", T0 + 250 * BAR, T0 + 250 * BAR + 59_000)
    assert frame.empty and http.klines_starts() == []
