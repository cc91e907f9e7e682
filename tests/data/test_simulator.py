"""The simulator's candles must look like real 1m crypto data, which i.i.d. Gaussian returns do not."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from app.data.simulator import MarketSimulator, SimulatorParams
from app.data.validation import validate_candles

T0 = 1_704_067_200_000
BAR = 60_000
THREE_DAYS = 3 * 1440


def _log_returns(frame: pd.DataFrame) -> np.ndarray:
    return np.diff(np.log(frame["close"].to_numpy()))


def _autocorr(x: np.ndarray, lag: int) -> float:
    x = x - x.mean()
    return float((x[:-lag] * x[lag:]).sum() / (x * x).sum())


@pytest.fixture(scope="module")
def three_days() -> dict[str, pd.DataFrame]:
    return MarketSimulator(seed=1).generate(["BTC-USDT", "ETH-USDT", "XRP-USDT"], T0, THREE_DAYS)


def test_same_seed_gives_the_same_candles_and_another_seed_others():
    a = MarketSimulator(5).generate(["BTC-USDT", "SOL-USDT"], T0, 300)
    b = MarketSimulator(5).generate(["BTC-USDT", "SOL-USDT"], T0, 300)
    c = MarketSimulator(6).generate(["BTC-USDT", "SOL-USDT"], T0, 300)
    for sym in a:
        pd.testing.assert_frame_equal(a[sym], b[sym])
        assert not np.allclose(a[sym]["close"], c[sym]["close"])


def test_candles_are_consistent_ohlc_on_consecutive_minutes(three_days):
    for frame in three_days.values():
        assert validate_candles(frame).rejected == []
        assert (frame["ts"].diff().dropna() == BAR).all() and frame["ts"].iloc[0] == T0
        assert (frame["high"] >= frame[["open", "close"]].max(axis=1)).all()
        assert (frame["low"] <= frame[["open", "close"]].min(axis=1)).all()
        assert np.allclose(frame["open"].iloc[1:].to_numpy(), frame["close"].iloc[:-1].to_numpy())
        assert (frame["high"] > frame["low"]).mean() > 0.99


def test_base_prices_are_plausible_per_symbol(three_days):
    first = {s: f["open"].iloc[0] for s, f in three_days.items()}
    assert 50_000 < first["BTC-USDT"] < 70_000
    assert 2_500 < first["ETH-USDT"] < 3_500
    assert 0.5 < first["XRP-USDT"] < 0.7


def test_returns_are_fat_tailed(three_days):
    kurtosis = stats.kurtosis(_log_returns(three_days["BTC-USDT"]))
    assert 3.0 < kurtosis < 300.0  # Gaussian: ~0 (+-0.1); real BTC 1m over 3 days: ~2-75, median ~6


def test_volatility_clusters_and_its_memory_lasts_hours(three_days):
    for sym in ("BTC-USDT", "ETH-USDT"):
        absolute = np.abs(_log_returns(three_days[sym]))
        assert _autocorr(absolute, 1) > 0.12
        hours = np.mean([_autocorr(absolute, lag) for lag in range(30, 241, 10)])
        assert hours > 0.03  # i.i.d. returns: ~0 (+-0.015)
        assert _autocorr(absolute, 1) > _autocorr(absolute, 60) > 0


def test_volume_rises_with_volatility(three_days):
    for frame in three_days.values():
        assert np.corrcoef(frame["volume"].to_numpy()[1:], np.abs(_log_returns(frame)))[0, 1] > 0.3


def test_volume_peaks_in_the_us_afternoon():
    # regimes switched off: over a few days they would drown the intraday cycle in noise
    quiet = SimulatorParams(regime_vol=(1.0, 1.0, 1.0), slow_vol=0.0)
    frame = MarketSimulator(1, quiet).generate(["BTC-USDT"], T0, 7 * 1440)["BTC-USDT"]
    hour = (frame["ts"] // 3_600_000) % 24
    assert frame["volume"][hour.between(13, 16)].mean() > 1.2 * frame["volume"][hour.between(1, 4)].mean()


def test_majors_move_together_through_a_common_factor(three_days):
    btc, eth, xrp = (_log_returns(three_days[s]) for s in ("BTC-USDT", "ETH-USDT", "XRP-USDT"))
    assert 0.75 < np.corrcoef(btc, eth)[0, 1] < 0.95
    assert 0.3 < np.corrcoef(btc, xrp)[0, 1] < np.corrcoef(btc, eth)[0, 1]


def test_planted_autocorrelation_is_learnable_and_absent_by_default(three_days):
    planted = MarketSimulator(1, SimulatorParams(ar1=0.2)).generate(["BTC-USDT"], T0, THREE_DAYS)
    assert 0.12 < _autocorr(_log_returns(planted["BTC-USDT"]), 1) < 0.28
    assert abs(_autocorr(_log_returns(three_days["BTC-USDT"]), 1)) < 0.06


def test_extend_continues_each_history_without_a_jump(three_days):
    histories = {"BTC-USDT": three_days["BTC-USDT"], "ETH-USDT": three_days["ETH-USDT"].iloc[:-10]}
    last = {s: h["ts"].iloc[-1] for s, h in histories.items()}
    until = last["BTC-USDT"] + 120 * BAR
    new = MarketSimulator(1).extend(histories, until)
    assert len(new["BTC-USDT"]) == 120 and len(new["ETH-USDT"]) == 130
    for sym, frame in new.items():
        hist = histories[sym]
        assert frame["ts"].iloc[0] == last[sym] + BAR and frame["ts"].iloc[-1] == until
        assert frame["open"].iloc[0] == pytest.approx(hist["close"].iloc[-1])
        before = np.std(_log_returns(hist.iloc[-61:]))
        after = np.std(_log_returns(pd.concat([hist.iloc[-1:], frame.iloc[:60]])))
        assert 1 / 3 < after / before < 3
        level = hist["volume"].iloc[-240:].median()
        assert 1 / 3 < frame["volume"].iloc[:60].median() / level < 3
        assert validate_candles(frame).rejected == []


def test_extend_is_deterministic_and_new_params_change_the_regime(three_days):
    history = {"BTC-USDT": three_days["BTC-USDT"]}
    until = three_days["BTC-USDT"]["ts"].iloc[-1] + 1440 * BAR
    same = MarketSimulator(1).extend(history, until)["BTC-USDT"]
    pd.testing.assert_frame_equal(same, MarketSimulator(1).extend(history, until)["BTC-USDT"])
    stormy = MarketSimulator(1, SimulatorParams(vol_scale=4.0)).extend(
        history, until, history_params=SimulatorParams()
    )["BTC-USDT"]
    assert np.std(_log_returns(stormy)) > 2.5 * np.std(_log_returns(same))


def test_extend_caps_the_continuation_and_leaves_the_gap(three_days):
    history = {"BTC-USDT": three_days["BTC-USDT"].iloc[:100]}
    until = T0 + 2_000 * BAR
    new = MarketSimulator(1).extend(history, until, max_bars=60)["BTC-USDT"]
    assert len(new) == 60 and new["ts"].iloc[0] == until - 59 * BAR
    assert MarketSimulator(1).extend(history, T0 + 99 * BAR)["BTC-USDT"].empty
