"""Every feature is causal, reproducible from a short warmed-up window, and scale-free when it says so."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from app.features import FEATURES, compute_features, is_scale_free, required_warmup

EXTRA = ["returns_3", "log_returns_10", "rsi_7", "atr_3", "natr_5", "adx_30", "ema_50", "ema_dist_10",
         "sma_dist_50", "volume_ratio_5", "bb_width_10", "realized_vol_10", "close_zscore_50",
         # higher-timeframe and volatility-regime features (cross-asset ones: test_market_features.py)
         "htf_returns_15m", "htf_returns_1h_2", "htf_rsi_3_15m", "htf_returns_5m_3", "vol_ratio_10_60",
         "vol_pct_10_300"]
ALL = [*FEATURES, *EXTRA]


def _agree(got: np.ndarray, want: np.ndarray, rtol: float, scale: float) -> np.ndarray:
    """Elementwise agreement to `rtol` relative, with an absolute floor far below the feature's scale so
    values crossing zero (returns, MACD histogram) are judged against their size, not against zero."""
    both_nan = np.isnan(got) & np.isnan(want)
    return both_nan | (np.abs(got - want) <= rtol * np.abs(want) + 1e-12 * scale)


def _scale(values: pd.Series) -> float:
    return float(np.nanmedian(np.abs(values.to_numpy()))) or 1.0


@pytest.mark.parametrize("name", ALL)
def test_appending_future_candles_changes_no_earlier_value(name: str, make_candles):
    n, k = 1700, 60  # crosses midnight UTC, so the daily VWAP resets inside the frame
    candles = make_candles(n + k, seed=1)
    other = make_candles(n + k, seed=2)
    other_future = pd.concat([candles.iloc[:n], other.iloc[n:]])

    past = compute_features(candles.iloc[:n], [name])
    for extended in (candles, other_future):
        later = compute_features(extended, [name]).iloc[:n]
        np.testing.assert_array_equal(later[name].to_numpy(), past[name].to_numpy())


@pytest.mark.parametrize("name", ALL)
def test_a_window_of_lookback_plus_warmup_reproduces_the_full_history_value(name: str, make_candles):
    full = make_candles(4000, seed=3)
    history = compute_features(full, [name])[name]
    lookback, warmup = 150, required_warmup([name])
    for end in (4000, 3100):
        window = full.iloc[end - lookback - warmup : end]
        served = compute_features(window, [name])[name].iloc[-lookback:]
        trained = history.iloc[end - lookback : end]
        ok = _agree(served.to_numpy(), trained.to_numpy(), 1e-6, _scale(history))
        assert ok.all(), f"{name} differs at {served.index[~ok][:3].tolist()} (warm-up {warmup} bars)"


@pytest.mark.parametrize("name", ["rsi_14", "adx_14", "macd_histogram_pct", "vwap_dist"])
def test_a_window_without_warmup_does_not_reproduce_recursive_features(name: str, make_candles):
    full = make_candles(4000, seed=3)
    history = compute_features(full, [name])[name].iloc[-150:]
    short = compute_features(full.iloc[-150 - required_warmup([name]) // 4 :], [name])[name].iloc[-150:]
    assert not _agree(short.to_numpy(), history.to_numpy(), 1e-6, _scale(history)).all()


def test_required_warmup_is_the_largest_of_the_features_and_follows_the_timeframe():
    assert required_warmup(["returns", "rsi_14"]) == required_warmup(["rsi_14"]) > 14
    assert required_warmup(["vwap"], "1m") == 1439
    assert required_warmup(["vwap"], "5m") == 287
    assert required_warmup(["vwap"], "1h") == 23


@pytest.mark.parametrize("name", [n for n in ALL if is_scale_free(n)])
def test_scale_free_features_ignore_the_price_and_volume_units(name: str, make_candles):
    candles = make_candles(1200, seed=4)
    base = compute_features(candles, [name])[name]
    prices = candles.copy()
    prices[["open", "high", "low", "close"]] *= 1000.0
    volumes = candles.assign(volume=candles["volume"] * 1000.0)
    for scaled in (prices, volumes):
        other = compute_features(scaled, [name])[name]
        ok = _agree(other.to_numpy(), base.to_numpy(), 1e-9, _scale(base))
        assert ok.all(), f"{name} changed with units at {base.index[~ok][:3].tolist()}"


@pytest.mark.parametrize("name", [n for n in ALL if not is_scale_free(n)])
def test_features_not_marked_scale_free_do_depend_on_units(name: str, make_candles):
    candles = make_candles(600, seed=5)
    base = compute_features(candles, [name])[name].to_numpy()
    prices = candles.copy()
    prices[["open", "high", "low", "close"]] *= 1000.0
    volumes = candles.assign(volume=candles["volume"] * 1000.0)
    changed = [
        not np.allclose(compute_features(s, [name])[name].to_numpy(), base, rtol=1e-6, equal_nan=True)
        for s in (prices, volumes)
    ]
    assert any(changed)


def test_flat_market_gives_zero_band_width_and_zscore_not_noise(make_candles):
    candles = make_candles(600, seed=6)
    flat_end = candles.index[600 // 3 + 29]  # last bar of the 30-bar flat stretch
    values = compute_features(candles, ["bb_width_20", "close_zscore_20"]).loc[flat_end]
    assert values["bb_width_20"] == 0.0
    assert values["close_zscore_20"] == 0.0
