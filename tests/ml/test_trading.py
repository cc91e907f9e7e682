"""The cost-aware trading backtest and the reliability table."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from app.ml.metrics import CONFIDENCE_EDGES, reliability_table
from app.ml.trading import backtest_direction


def _meta(closes: list[float], symbol: str = "BTC-USDT") -> pd.DataFrame:
    return pd.DataFrame({"symbol": symbol, "ts_ms": np.arange(len(closes)) * 60_000, "close": closes})


CLOSES = [100.0, 101.0, 100.0, 102.0, 101.0, 103.0]


def test_always_long_is_buy_and_hold() -> None:
    result = backtest_direction(np.ones(6), _meta(CLOSES), "1m", fee_bps=10, slippage_bps=5)
    assert result["total_return"] == pytest.approx(result["buy_and_hold"]["total_return"])
    assert result["trades"] == 1


def test_perfect_foresight_wins_every_bar_and_costs_eat_into_it() -> None:
    closes = np.array(CLOSES)
    foresight = np.sign(np.r_[closes[1:] - closes[:-1], 1.0])
    free = backtest_direction(foresight, _meta(CLOSES), "1m", fee_bps=0, slippage_bps=0)
    costly = backtest_direction(foresight, _meta(CLOSES), "1m", fee_bps=10, slippage_bps=2)
    assert free["hit_rate"] == 1.0 and free["max_drawdown"] == 0.0
    assert free["total_return"] == pytest.approx(np.prod(np.abs(closes[1:] / closes[:-1] - 1) + 1) - 1)
    assert costly["trades"] == 5  # enter, then flip every bar
    assert costly["total_return"] < free["total_return"]


def test_sharpe_is_annualised_by_bars_per_year() -> None:
    positions = np.array([1, 1, -1, 1, -1, 1.0])
    one = backtest_direction(positions, _meta(CLOSES), "1m", 0, 0)["sharpe"]
    five = backtest_direction(positions, _meta(CLOSES), "5m", 0, 0)["sharpe"]
    assert one / five == pytest.approx(np.sqrt(5))


def test_symbols_trade_side_by_side_with_equal_weight() -> None:
    meta = pd.concat([_meta(CLOSES, "A"), _meta(CLOSES[::-1], "B")])
    result = backtest_direction(np.ones(12), meta, "1m", 0, 0)
    a = backtest_direction(np.ones(6), _meta(CLOSES), "1m", 0, 0)
    assert result["bars"] == 5 and result["trades"] == 2
    assert result["total_return"] != pytest.approx(a["total_return"])


def test_reliability_table_shows_a_calibrated_and_an_overconfident_model() -> None:
    rng = np.random.default_rng(0)
    stated = rng.uniform(0.5, 1.0, 20_000)
    honest = reliability_table(stated, rng.uniform(size=stated.size) < stated, CONFIDENCE_EDGES)
    boastful = reliability_table(stated, rng.uniform(size=stated.size) < 0.5, CONFIDENCE_EDGES)
    assert honest["weighted_gap"] < 0.02
    assert boastful["weighted_gap"] > 0.2
    assert sum(b["count"] for b in honest["bins"]) == stated.size
