"""`ValidationPipeline().validate_on_live_data`: backtest_model's metrics on the newest unseen hours."""

from __future__ import annotations

import pandas as pd
import pytest

from app.core.errors import BadInput
from app.data.candles import store_candles
from app.data.frames import index_ms
from app.ml import DirectionPredictor, RiskScorer, ValidationPipeline
from tests.ml.synthetic import make_candles


def _store(candles: pd.DataFrame, symbol: str = "BTC-USDT") -> None:
    store_candles(symbol, candles.reset_index(drop=True).assign(ts=index_ms(candles.index)), "simulated")


def test_live_metrics_are_the_backtests_on_the_newest_hours_the_model_never_saw() -> None:
    candles = make_candles(4_000, seed=5)
    _store(candles.iloc[:2_000])
    model = DirectionPredictor(n_estimators=20).train(symbols=["BTC-USDT"], lookback_bars=1_800,
                                                      prediction_horizon=1)
    validator = ValidationPipeline()
    with pytest.raises(BadInput, match="did not train on"):
        validator.validate_on_live_data(model, symbol="BTC-USDT", hours_back=24)

    _store(candles.iloc[2_000:])  # two more days of candles arrive
    live = validator.validate_on_live_data(model, symbol="BTC-USDT", hours_back=24)
    backtest = validator.backtest_model(model, symbols=["BTC-USDT"], days_back=1)

    assert set(backtest) <= set(live)  # the same metric names
    seen = pd.Timestamp(model.training_["window_end_ms"], unit="ms", tz="UTC")
    newest = candles.index[-1]
    assert pd.Timestamp(live["start"]) > seen
    assert pd.Timestamp(live["start"]) >= newest - pd.Timedelta(hours=24)
    assert 1_300 < live["n"] <= 1_440
    for name in ("accuracy", "f1", "skill"):
        low, high = live["intervals"][name]
        assert low <= live[name] <= high and high - low > 0
    assert 0 < live["n_effective"] <= live["n"] and live["hours_back"] == 24


def test_a_regressor_gets_the_seeds_accuracy_too_from_its_yes_no_reading() -> None:
    candles = make_candles(3_000, seed=6)
    _store(candles.iloc[:1_500])
    model = RiskScorer(n_estimators=10).train(symbols=["BTC-USDT"], lookback_bars=1_400)
    _store(candles.iloc[1_500:])
    live = ValidationPipeline().validate_on_live_data(model, symbol="BTC-USDT", hours_back=12)
    assert {"rmse", "mae", "r2", "skill", "accuracy", "precision", "recall", "f1"} <= set(live)
    assert 0.0 <= live["accuracy"] <= 1.0 and "training rows" in live["seed_view"]["rule"]
    assert 600 < live["n"] <= 720
