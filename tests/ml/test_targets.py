"""Labels use close[t] and bars t+1..t+h only; the last h rows stay unlabelled."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from app.ml import targets
from tests.ml.synthetic import make_candles

H = 4
LABELS = {
    "direction": lambda c: targets.direction(c, H),
    "risk": lambda c: targets.risk(c, H),
    "log_return": lambda c: targets.log_return(c, H),
    "momentum": lambda c: targets.momentum(c, H, H),
    "volatility": lambda c: targets.realized_volatility(c, H),
}


def _perturb(candles: pd.DataFrame, rows: slice, seed: int) -> pd.DataFrame:
    out = candles.copy()
    factor = np.exp(np.random.default_rng(seed).normal(0, 0.05, len(out.iloc[rows])))
    for col in ("open", "high", "low", "close"):
        out.iloc[rows, out.columns.get_loc(col)] *= factor
    return out


@pytest.mark.parametrize("name", LABELS)
def test_label_ignores_bars_after_the_horizon(name: str) -> None:
    candles = make_candles(200, seed=1)
    t = 100
    before = LABELS[name](candles)
    after = LABELS[name](_perturb(candles, slice(t + H + 1, None), seed=2))
    assert before.iloc[: t + 1].equals(after.iloc[: t + 1])


@pytest.mark.parametrize("name", ["direction", "risk", "log_return", "volatility"])
def test_label_ignores_bars_before_t(name: str) -> None:
    candles = make_candles(200, seed=3)
    t = 100
    before = LABELS[name](candles)
    after = LABELS[name](_perturb(candles, slice(0, t), seed=4))
    assert np.allclose(before.iloc[t:].dropna(), after.iloc[t:].dropna())


@pytest.mark.parametrize("name", LABELS)
def test_label_depends_on_the_next_h_bars(name: str) -> None:
    candles = make_candles(200, seed=5)
    labels = [LABELS[name](_perturb(candles, slice(101, 101 + H), seed=s)).iloc[100] for s in range(8)]
    assert len(set(np.round(labels, 12))) > 1


@pytest.mark.parametrize("name", LABELS)
def test_last_h_rows_are_unlabelled(name: str) -> None:
    label = LABELS[name](make_candles(120, seed=6))
    assert label.iloc[-H:].isna().all()
    assert label.iloc[30:-H].notna().all()


def test_risk_is_the_largest_excursion_either_way() -> None:
    index = pd.date_range("2024-01-01", periods=4, freq="1min", tz="UTC")
    candles = pd.DataFrame({"open": [100, 100, 100, 100.0], "high": [100, 101, 100.5, 100.0],
                            "low": [100, 99.5, 97.0, 99.0], "close": [100, 100, 99, 99.5],
                            "volume": [1.0] * 4}, index=index)
    assert targets.risk(candles, 2).iloc[0] == pytest.approx(0.03)  # the low of 97 beats the high of 101


def test_momentum_accelerates_when_the_move_extends_in_its_direction() -> None:
    index = pd.date_range("2024-01-01", periods=6, freq="1min", tz="UTC")
    closes = {"falling faster": [100, 99, 97, 94, 90, 85], "slowing rise": [100, 102, 104, 105, 105.5, 105.6]}
    states = {}
    for name, close in closes.items():
        frame = pd.DataFrame({c: close for c in ("open", "high", "low", "close")}, index=index)
        frame["volume"] = 1.0
        states[name] = targets.momentum(frame, 2, 2).iloc[2]
    assert states == {"falling faster": 1.0, "slowing rise": 0.0}


def test_volatility_is_the_root_sum_of_squared_future_log_returns() -> None:
    candles = make_candles(50, seed=7)
    r = np.log(candles["close"]).diff()
    expected = np.sqrt((r.iloc[11:11 + H] ** 2).sum())
    assert targets.realized_volatility(candles, H).iloc[10] == pytest.approx(expected)
