"""Cost-aware backtest of a direction model: long on UP, short on DOWN, one decision per bar.

The position decided at the close of bar t earns the return from close[t] to close[t+1]. Every change of
position pays fees + slippage (bps of the notional traded: 1 unit to enter, 2 to flip). Symbols are
traded side by side with equal weight; figures are annualised on 525,600 minutes a year.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from app.data.frames import TIMEFRAME_MS

MINUTES_PER_YEAR = 525_600
EQUITY_POINTS = 200


def _stats(returns: pd.Series, periods_per_year: float) -> dict:
    r = returns.to_numpy(dtype="float64")
    equity = np.cumprod(1.0 + r)
    sd = r.std(ddof=1) if len(r) > 1 else 0.0
    drawdown = equity / np.maximum.accumulate(equity) - 1.0 if len(r) else np.zeros(1)
    return {
        "total_return": float(equity[-1] - 1.0) if len(r) else 0.0,
        "sharpe": float(r.mean() / sd * np.sqrt(periods_per_year)) if sd > 0 else 0.0,
        "max_drawdown": float(-drawdown.min()),
    }


def _equity(strategy: pd.Series, hold: pd.Series) -> dict:
    """Both equity curves (1.0 at the start) at <= EQUITY_POINTS + 1 evenly spaced bars, for plots."""
    curves = pd.DataFrame({"strategy": (1.0 + strategy).cumprod(), "buy_and_hold": (1.0 + hold).cumprod()})
    picked = curves.iloc[sorted({*range(0, len(curves), max(1, -(-len(curves) // EQUITY_POINTS))),
                                 len(curves) - 1})]
    return {"ts_ms": [int(t) for t in picked.index],
            **{name: [round(float(v), 6) for v in picked[name]] for name in curves}}


def backtest_direction(
    positions: np.ndarray,
    meta: pd.DataFrame,
    timeframe: str,
    fee_bps: float = 10.0,
    slippage_bps: float = 2.0,
) -> dict:
    """`positions` +1/-1 per row of `meta` (symbol, ts_ms, close): strategy and buy-and-hold figures."""
    cost = (fee_bps + slippage_bps) / 1e4
    frame = pd.DataFrame({
        "symbol": meta["symbol"].to_numpy(), "ts": meta["ts_ms"].to_numpy(),
        "close": meta["close"].to_numpy(dtype="float64"), "pos": np.asarray(positions, dtype="float64"),
    })
    strategy, hold, gross, trades = [], [], [], 0
    for _, g in frame.sort_values(["symbol", "ts"], kind="stable").groupby("symbol", sort=True):
        nxt = g["close"].to_numpy()[1:] / g["close"].to_numpy()[:-1] - 1.0
        pos = g["pos"].to_numpy()[:-1]
        turnover = np.abs(np.diff(np.r_[0.0, pos]))
        trades += int((turnover > 0).sum())
        ts = g["ts"].to_numpy()[:-1]
        gross.append(pos * nxt)
        strategy.append(pd.Series(pos * nxt - turnover * cost, index=ts))
        hold.append(pd.Series(nxt - np.r_[cost, np.zeros(len(nxt) - 1)][: len(nxt)], index=ts))
    periods = MINUTES_PER_YEAR * 60_000 / TIMEFRAME_MS[timeframe]
    if not strategy:
        return {"bars": 0, "trades": 0}
    strat = pd.concat(strategy).groupby(level=0).mean().sort_index()
    bh = pd.concat(hold).groupby(level=0).mean().sort_index()
    pnl = np.concatenate(gross)
    decided = pnl[pnl != 0]
    return {
        **_stats(strat, periods),
        "hit_rate": float((decided > 0).mean()) if len(decided) else None,
        "trades": trades,
        "bars": int(len(strat)),
        "fee_bps": fee_bps,
        "slippage_bps": slippage_bps,
        "buy_and_hold": _stats(bh, periods),
        "equity": _equity(strat, bh),
    }
