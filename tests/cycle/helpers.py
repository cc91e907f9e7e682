"""Shared pieces of the cycle tests: simulated candles in the store, small definitions, burst workers."""

from __future__ import annotations

from typing import Any

from app.core.queues import KINDS, get_queue
from app.core.redis import rq_connection
from app.data.candles import store_candles
from app.data.simulator import MarketSimulator, SimulatorParams
from workers.worker import PromptSimpleWorker

SYMBOLS = ["BTC-USDT", "ETH-USDT", "XRP-USDT"]
DAY_BARS = 1440
START_MS = 1_700_000_000_000 // 60_000 * 60_000

SMALL = {
    "xgboost": {"n_estimators": 15, "max_depth": 3},
    "random_forest": {"n_estimators": 12, "max_depth": 5},
    "torch": {"hidden_layers": [8], "epochs": 2},
    "svm": {"n_components": 40},
    "gradient_boosting": {"max_iter": 15, "max_leaf_nodes": 7},
}
FEATURES = ["returns", "returns_5", "rsi_14", "natr_14", "realized_vol_30"]
HORIZON = {"xgboost": 1, "random_forest": 5, "torch": 60, "svm": 5, "gradient_boosting": 60}


def definition(model_type: str, name: str, **config: Any) -> dict[str, Any]:
    return {
        "type": model_type,
        "name": name,
        "config": {**SMALL[model_type], **config},
        "features": FEATURES,
        "horizon": HORIZON[model_type],
        "timeframe": "1m",
    }


def one_per_kind(suffix: str = "") -> list[dict[str, Any]]:
    return [definition(t, f"{t}_model{suffix}") for t in SMALL]


def seed_candles(
    days: float, *, seed: int = 7, params: SimulatorParams | None = None, symbols: list[str] = SYMBOLS
) -> dict[str, Any]:
    frames = MarketSimulator(seed, params).generate(symbols, START_MS, int(days * DAY_BARS))
    for symbol, frame in frames.items():
        store_candles(symbol, frame, "simulated")
    return frames


def extend_candles(
    history: dict[str, Any], days: float, *, seed: int = 8, params: SimulatorParams | None = None
) -> dict[str, Any]:
    until = max(int(f["ts"].iloc[-1]) for f in history.values()) + int(days * DAY_BARS) * 60_000
    frames = MarketSimulator(seed, params).extend(history, until)
    for symbol, frame in frames.items():
        store_candles(symbol, frame, "simulated")
    return frames


def run_workers() -> None:
    """A real RQ worker in this process, until every queue (and the jobs they unlock) is empty."""
    worker = PromptSimpleWorker([get_queue(kind) for kind in KINDS], connection=rq_connection())
    worker.work(burst=True, logging_level="WARNING")
