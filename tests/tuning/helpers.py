"""Shared pieces of the tuning tests: stored simulated candles, a small space, a bad starting definition."""

from __future__ import annotations

from typing import Any

from app.core.queues import get_queue
from app.core.redis import rq_connection
from app.data.candles import store_candles
from app.data.simulator import MarketSimulator, SimulatorParams
from workers.worker import PromptSimpleWorker

SYMBOLS = ["BTC-USDT", "ETH-USDT"]
START_MS = 1_700_000_000_000 // 60_000 * 60_000
DAY_BARS = 1440

SPACE = {
    "params": {"n_estimators": {"low": 10, "high": 40, "step": 10}, "max_depth": {"low": 2, "high": 4}},
    "features": ["returns", "returns_5", "volume_ratio_20", "bb_width_20", "hour_sin"],
    "min_features": 1,
}
BAD_START = {
    "type": "xgboost", "name": "direction_tuned", "config": {"n_estimators": 10, "max_depth": 2},
    "features": ["volume_ratio_20", "hour_sin"], "horizon": 1, "timeframe": "1m",
}


def seed(days: float, *, ar1: float = 0.0, seed: int = 3) -> dict[str, Any]:
    frames = MarketSimulator(seed, SimulatorParams(ar1=ar1)).generate(SYMBOLS, START_MS, int(days * DAY_BARS))
    for symbol, frame in frames.items():
        store_candles(symbol, frame, "simulated")
    return frames


def options(**extra: Any) -> dict[str, Any]:
    return {"definitions": [BAD_START], "symbols": SYMBOLS, "window_days": 2, "folds": 4, "seed": 1,
            **extra}


def run_tune_worker() -> None:
    """A real RQ worker in this process, until the tune queue is empty."""
    worker = PromptSimpleWorker([get_queue("tune")], connection=rq_connection())
    worker.work(burst=True, logging_level="WARNING")
