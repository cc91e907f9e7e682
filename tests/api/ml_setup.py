"""Shared setup for the prediction-API tests: small models trained once on simulated candles, and a way
to put them (candles, rows, files, statuses) in the per-test database that conftest empties after each test.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from app.data.candles import store_candles
from app.data.simulator import MarketSimulator

SYMBOLS = ("BTC-USDT", "ETH-USDT")
N_BARS = 2400
START_TS = 1_767_225_600_000  # 2026-01-01


@dataclass
class Trained:
    candles: dict[str, pd.DataFrame]  # ts column + OHLCV, as the simulator returns
    models: dict[str, object]  # family -> fitted model


def _indexed(frame: pd.DataFrame) -> pd.DataFrame:
    from app.data.frames import candles_frame

    return candles_frame(frame)


def train_models() -> Trained:
    """Two direction models (different capacities), a risk and a price model, with DI references."""
    from app.ml.kinds import DirectionPredictor, PricePredictor, RiskScorer

    raw = MarketSimulator(7).generate(list(SYMBOLS), START_TS, N_BARS)
    candles = {s: _indexed(f) for s, f in raw.items()}
    specs = {
        "direction_small": DirectionPredictor(n_estimators=15, max_depth=2, horizon=3),
        "direction_deep": DirectionPredictor(n_estimators=25, max_depth=4, horizon=3, seed=3),
        "risk_rf": RiskScorer(n_estimators=15, max_depth=4),
    }
    specs["price_mlp"] = PricePredictor(epochs=3, hidden_layers=(16,))
    models = {}
    for family, model in specs.items():
        models[family] = model.train_on(candles, data_source="simulated")  # attaches the DI reference
    return Trained(raw, models)


def store_all_candles(trained: Trained, upto: int | None = None) -> None:
    for symbol, frame in trained.candles.items():
        store_candles(symbol, frame if upto is None else frame.iloc[:upto], "simulated")


def save(trained: Trained, family: str, status: str = "active") -> str:
    from app.services.models import save_model, set_status

    record = save_model(trained.models[family], name=family)
    if status != "candidate":
        set_status(record.name, status, "test setup")
    return record.name


def api_keys() -> dict[str, dict[str, str]]:
    from app.services import keys

    keys.clear_cache()
    return {"predict": {"X-API-Key": keys.create_key("predict")},
            "operator": {"Authorization": f"Bearer {keys.create_key('operator')}"}}
