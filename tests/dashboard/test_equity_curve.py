"""The trading backtest keeps a compact equity curve for the Model page: it ends where the summary says."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from app.ml.trading import EQUITY_POINTS, backtest_direction


def test_equity_curve_is_compact_and_ends_at_the_total_returns() -> None:
    rng = np.random.default_rng(3)
    bars = 1500
    ts = 1_700_000_000_000 + 60_000 * np.arange(bars)
    meta = pd.DataFrame(
        {
            "symbol": np.repeat(["BTC-USDT", "ETH-USDT"], bars),
            "ts_ms": np.tile(ts, 2),
            "close": np.concatenate([100 * np.exp(np.cumsum(rng.normal(0, 1e-3, bars))) for _ in range(2)]),
        }
    )
    positions = np.where(rng.random(2 * bars) > 0.5, 1.0, -1.0)

    result = backtest_direction(positions, meta, "1m")

    equity = result["equity"]
    assert len(equity["ts_ms"]) <= EQUITY_POINTS + 1
    assert equity["ts_ms"] == sorted(equity["ts_ms"])
    assert equity["strategy"][-1] == pytest.approx(1 + result["total_return"], abs=1e-5)
    assert equity["buy_and_hold"][-1] == pytest.approx(1 + result["buy_and_hold"]["total_return"], abs=1e-5)
