"""FeatureManager on the real database: what training and serving ask for."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from app.core.errors import BadInput, NotFound
from app.data.candles import store_candles
from app.data.frames import index_ms
from app.features import DEFAULT_FEATURES, FeatureManager, compute_features, is_scale_free, resample

SYMBOL = "BTC-USDT"


def _store(candles: pd.DataFrame) -> None:
    rows = candles.reset_index(drop=True).assign(ts=index_ms(candles.index))
    store_candles(SYMBOL, rows, "test")


@pytest.fixture()
def stored(make_candles) -> pd.DataFrame:
    """Two days and a bit of 1m candles, stored; returned as the full-history frame."""
    candles = make_candles(3100, seed=9, start="2024-01-01 22:13")
    _store(candles)
    return candles


def _close(got: pd.DataFrame, want: pd.DataFrame) -> None:
    assert list(got.index) == list(want.index)
    np.testing.assert_allclose(got.to_numpy(), want.to_numpy(), rtol=1e-6, atol=1e-12)


def test_1m_features_are_the_newest_lookback_rows_and_match_the_full_history(stored: pd.DataFrame):
    got = FeatureManager().get_features(SYMBOL, "1m", lookback_bars=120)
    assert list(got.columns) == list(DEFAULT_FEATURES)
    assert all(is_scale_free(name) for name in got.columns)
    assert str(got.index.tz) == "UTC" and got.index[-1] == stored.index[-1]
    _close(got, compute_features(stored, DEFAULT_FEATURES).iloc[-120:])


@pytest.mark.parametrize("timeframe", ["5m", "15m", "1h"])
def test_higher_timeframes_are_whole_resampled_bars_matching_the_full_history(stored, timeframe):
    names = ["returns", "rsi_14", "range_pct", "close_zscore_20", "volume_ratio_20"]
    names = names if timeframe != "1h" else ["returns", "volume_ratio_5"]  # 1h: few bars stored
    got = FeatureManager().get_features(SYMBOL, timeframe, names, lookback_bars=30)
    step = pd.Timedelta(timeframe)
    assert len(got) == 30
    assert (index_ms(got.index) % (step.value // 1_000_000) == 0).all()
    assert got.index[-1] + step <= stored.index[-1] + pd.Timedelta("1min")
    _close(got, compute_features(resample(stored, timeframe), names).loc[got.index])


def test_end_ts_gives_the_features_as_they_were_then(stored: pd.DataFrame):
    end = stored.index[2500]
    end_ms = int(index_ms(pd.DatetimeIndex([end]))[0])
    got = FeatureManager().get_features(SYMBOL, "1m", ["rsi_14", "vwap_dist"], 50, end_ts=end_ms)
    assert got.index[-1] == end
    _close(got, compute_features(stored.loc[:end], ["rsi_14", "vwap_dist"]).iloc[-50:])


def test_short_history_returns_only_rows_whose_features_are_defined(make_candles):
    candles = make_candles(60, seed=10)
    _store(candles)
    got = FeatureManager().get_features(SYMBOL, "1m", ["rsi_14", "returns"], lookback_bars=500)
    assert got.index[0] == candles.index[14] and len(got) == 46
    assert not got.isna().any().any()


def test_unknown_feature_is_rejected_listing_the_known_ones():
    with pytest.raises(BadInput, match=r"'rsi14'.*rsi_<n>.*vwap"):
        FeatureManager().get_features(SYMBOL, "1m", ["returns", "rsi14"])


def test_unknown_timeframe_is_rejected_listing_the_known_ones():
    with pytest.raises(BadInput, match=r"'2m'.*1m, 5m, 15m, 1h"):
        FeatureManager().get_features(SYMBOL, "2m", ["returns"])


@pytest.mark.parametrize("timeframe", ["1m", "1h"])
def test_no_candles_says_to_ingest_first(timeframe):
    with pytest.raises(NotFound, match="mlpipe ingest"):
        FeatureManager().get_features("DOGE-USDT", timeframe, ["returns"])


def test_cross_asset_features_read_the_other_symbols_stored_candles_at_the_same_times(stored: pd.DataFrame,
                                                                                       make_candles):
    eth = make_candles(3100, seed=10, start="2024-01-01 22:13", price=2_000.0)
    store_candles("ETH-USDT", eth.reset_index(drop=True).assign(ts=index_ms(eth.index)), "test")
    names = ["btc_lag_5", "btc_beta_60", "xs_rel_returns_5"]
    got = FeatureManager().get_features("ETH-USDT", "1m", names, lookback_bars=100)
    want = compute_features(eth, names, market={"BTC-USDT": stored, "ETH-USDT": eth}).iloc[-100:]
    _close(got, want)
    with pytest.raises(BadInput, match="BTC-USDT"):  # a cross-section without BTC-USDT cannot read it
        FeatureManager().get_features("ETH-USDT", "1m", ["btc_lag_5"], symbols=["ETH-USDT", "XRP-USDT"])
