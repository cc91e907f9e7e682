"""Cross-asset features (`btc_*`, `xs_*`) and the closed-bar rule of higher-timeframe features.

The same no-look-ahead, warm-up and unit checks as every feature (test_feature_causality.py), with the
other symbols' candles passed as `market`; plus what is particular to them: a missing market candle spoils
only the windows holding it, and a feature never reads a higher-timeframe bar that has not closed.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from app.core.errors import BadInput
from app.features import compute_features, market_symbols, required_warmup
from tests.features.conftest import random_candles
from tests.features.test_feature_causality import _agree, _scale

MARKET = ["btc_returns_5", "btc_lag_3", "btc_beta_60", "btc_resid_30", "xs_mean_returns_5",
          "xs_rel_returns_15"]


def _market(n: int, seed: int) -> dict[str, pd.DataFrame]:
    """BTC and SOL candles on the same minutes as the symbol's (ETH, seed `seed`), other price levels."""
    eth = random_candles(n, seed=seed, price=2_000.0)
    return {"ETH-USDT": eth, "BTC-USDT": random_candles(n, seed=seed + 100),
            "SOL-USDT": random_candles(n, seed=seed + 200, price=20.0)}


def _features(market: dict[str, pd.DataFrame], name: str, rows: slice = slice(None)) -> pd.Series:
    return compute_features(market["ETH-USDT"].iloc[rows], [name],
                            market={s: f.iloc[rows] for s, f in market.items()})[name]


@pytest.mark.parametrize("name", MARKET)
def test_appending_future_candles_of_any_symbol_changes_no_earlier_value(name: str):
    n, k = 1700, 60
    market = _market(n + k, seed=1)
    past = _features(market, name, slice(0, n)).to_numpy()
    for other in ("ETH-USDT", "BTC-USDT", "SOL-USDT"):  # each symbol's future replaced in turn
        swapped = dict(market)
        swapped[other] = pd.concat([market[other].iloc[:n], random_candles(n + k, seed=9).iloc[n:]])
        np.testing.assert_array_equal(_features(swapped, name).iloc[:n].to_numpy(), past)
    # warm rows have values (beta is undefined only where BTC's flat stretch fills the window)
    assert np.isfinite(past[required_warmup([name]) :]).mean() > 0.97


@pytest.mark.parametrize("name", MARKET)
def test_a_window_of_lookback_plus_warmup_of_every_symbol_reproduces_the_full_history(name: str):
    market = _market(4000, seed=3)
    history = _features(market, name)
    lookback, warmup = 150, required_warmup([name])
    for end in (4000, 3100):
        served = _features(market, name, slice(end - lookback - warmup, end)).iloc[-lookback:]
        trained = history.iloc[end - lookback : end]
        ok = _agree(served.to_numpy(), trained.to_numpy(), 1e-9, _scale(history))
        assert ok.all(), f"{name} differs at {served.index[~ok][:3].tolist()}"


@pytest.mark.parametrize("name", MARKET)
def test_cross_asset_features_ignore_every_symbols_price_and_volume_units(name: str):
    market = _market(1200, seed=4)
    base = _features(market, name)
    scaled = {}
    for i, (symbol, frame) in enumerate(market.items()):
        scaled[symbol] = frame.copy()
        scaled[symbol][["open", "high", "low", "close"]] *= 10.0 ** (i + 1)
        scaled[symbol]["volume"] *= 7.0
    other = _features(scaled, name)
    ok = _agree(other.to_numpy(), base.to_numpy(), 1e-9, _scale(base))
    assert ok.all()


def test_a_missing_market_candle_spoils_only_the_windows_that_hold_it():
    market = _market(600, seed=5)
    gone = market["BTC-USDT"].index[300]
    market["BTC-USDT"] = market["BTC-USDT"].drop(gone)
    values = _features(market, "btc_returns_5")
    nan_at = set(values.index[values.isna()])
    assert nan_at == set(values.index[:5]) | {gone, values.index[305]}
    beta = _features(market, "btc_beta_60")
    assert beta.iloc[300:361].isna().all()
    assert beta.iloc[361:].notna().all() and beta.iloc[60:300].notna().all()


def test_the_cross_section_is_the_mean_over_the_symbols_passed():
    market = _market(300, seed=6)
    got = _features(market, "xs_mean_returns_5").iloc[-1]
    want = np.mean([f["close"].iloc[-1] / f["close"].iloc[-6] - 1 for f in market.values()])
    assert got == pytest.approx(want, rel=1e-12)
    rel = _features(market, "xs_rel_returns_5").iloc[-1]
    eth = market["ETH-USDT"]["close"]
    assert rel == pytest.approx(eth.iloc[-1] / eth.iloc[-6] - 1 - want, rel=1e-12)


def test_beta_recovers_a_planted_loading_on_btc():
    btc = random_candles(2000, seed=7)
    rng = np.random.default_rng(0)
    r_btc = np.log(btc["close"]).diff().fillna(0.0).to_numpy()
    r_eth = 1.5 * r_btc + rng.normal(0, 2e-4, len(r_btc))
    eth = btc.copy()
    eth["close"] = 2_000.0 * np.exp(np.cumsum(r_eth))
    eth["open"], eth["high"], eth["low"] = eth["close"], eth["close"] * 1.001, eth["close"] * 0.999
    beta = compute_features(eth, ["btc_beta_240"], market={"BTC-USDT": btc})["btc_beta_240"].iloc[240:]
    assert beta.median() == pytest.approx(1.5, abs=0.05)
    # the flat stretch of `random_candles` gives BTC no variance only in windows inside it: NaN, not inf
    assert np.isfinite(beta.dropna()).all()


def test_cross_asset_features_without_the_market_candles_say_which_symbol_is_needed():
    eth = random_candles(100, seed=8)
    with pytest.raises(BadInput, match="BTC-USDT"):
        compute_features(eth, ["btc_lag_5"])
    with pytest.raises(BadInput, match="BTC-USDT"):
        compute_features(eth, ["btc_lag_5"], market={"SOL-USDT": eth})


def test_market_symbols_are_what_the_features_read():
    call = ["SOL-USDT", "BTC-USDT", "ETH-USDT"]
    assert market_symbols(["returns", "rsi_14", "htf_returns_15m"], call) == []
    assert market_symbols(["btc_lag_5"], call) == ["BTC-USDT"]
    assert market_symbols(["btc_lag_5", "xs_rel_returns_5"], call) == sorted(call)
    with pytest.raises(BadInput, match="BTC-USDT"):
        market_symbols(["btc_beta_60"], ["ETH-USDT"])


def test_higher_timeframe_values_come_from_closed_bars_only():
    candles = random_candles(300, seed=9, start="2024-01-01 14:00")
    close = candles["close"]
    values = compute_features(candles, ["htf_returns_15m"])["htf_returns_15m"]
    at = pd.Timestamp  # the 1m candle opened at 14:44 closes at 14:45, with the 14:30 bin
    assert values[at("2024-01-01 14:44", tz="UTC")] == pytest.approx(
        close[at("2024-01-01 14:44", tz="UTC")] / close[at("2024-01-01 14:29", tz="UTC")] - 1, rel=1e-12)
    # one minute earlier the 14:30 bin is still open: the newest closed bin is 14:15
    assert values[at("2024-01-01 14:43", tz="UTC")] == pytest.approx(
        close[at("2024-01-01 14:29", tz="UTC")] / close[at("2024-01-01 14:14", tz="UTC")] - 1, rel=1e-12)
    assert values.iloc[:29].isna().all()  # the 14:00 bin closes at 14:15; a return needs the next one


def test_higher_timeframe_features_refuse_a_timeframe_that_does_not_divide_them():
    with pytest.raises(BadInput, match="timeframe"):
        required_warmup(["htf_returns_15m"], "1h")
    assert required_warmup(["htf_returns_1h"], "15m") == 2 * 4 - 1
    with pytest.raises(BadInput):
        compute_features(random_candles(50, freq="1h"), ["htf_returns_15m"])
