"""DESIGN 3: a feature list in price or volume units is fed in its scale-free form, never refused."""

from __future__ import annotations

import json

import pytest
from structlog.testing import capture_logs

from app.data.candles import store_candles
from app.data.frames import index_ms
from app.features import FeatureManager, scale_free_features
from app.ml import TrainingPipeline, load_model
from tests.ml.synthetic import make_candles

SEED_FEATURES = ["close", "returns", "rsi_14", "macd_histogram", "volume_sma_20", "atr_14", "vwap", "adx_14"]
FED = ["close_zscore_20", "returns", "rsi_14", "macd_histogram_pct", "volume_ratio_20", "natr_14",
       "vwap_dist", "adx_14"]
PRICES = {"BTC-USDT": 30_000.0, "ETH-USDT": 2_000.0, "XRP-USDT": 0.5}


def _store(bars: int = 3_000) -> dict:
    data = {}
    for i, (symbol, price) in enumerate(PRICES.items()):
        candles = make_candles(bars, seed=20 + i, price=price)
        store_candles(symbol, candles.reset_index(drop=True).assign(ts=index_ms(candles.index)), "simulated")
        data[symbol] = candles
    return data


def test_each_price_or_volume_unit_feature_has_its_scale_free_form() -> None:
    fed, substitutions = scale_free_features(SEED_FEATURES + ["ema_50", "sma_10", "natr_14"])
    assert fed == [*FED, "ema_dist_50", "sma_dist_10"]  # natr_14 once, though given twice over
    assert {s["given"]: s["fed"] for s in substitutions} == {
        "close": "close_zscore_20", "macd_histogram": "macd_histogram_pct",
        "volume_sma_20": "volume_ratio_20",
        "atr_14": "natr_14", "vwap": "vwap_dist", "ema_50": "ema_dist_50", "sma_10": "sma_dist_10",
    }


def test_the_seeds_feature_frames_train_on_the_scale_free_forms_and_say_so(store_dir, monkeypatch) -> None:
    import structlog

    from app.ml import base

    # a logger made here: the module's own may be cached by an earlier test (cache_logger_on_first_use),
    # and a cached logger keeps the processors it had, so capture_logs would not see its events
    monkeypatch.setattr(base, "log", structlog.get_logger("app.ml.base"))
    _store()
    fm = FeatureManager()
    frames = {s: fm.get_features(symbol=s, timeframe="1m", feature_list=SEED_FEATURES, lookback_bars=2000)
              for s in PRICES}
    definition = {"type": "xgboost", "name": "direction_predictor_001", "config": {"n_estimators": 20},
                  "walk_forward_folds": 0}
    with capture_logs() as logs:
        model = TrainingPipeline().train_model(definition, frames)

    assert model.feature_names_ == FED and list(model.features) == FED
    assert model.training_["features_given"] == SEED_FEATURES
    pairs = [[s["given"], s["fed"]] for s in model.training_["feature_substitutions"]]
    assert ["close", "close_zscore_20"] in pairs
    warning = next(e for e in logs if e["log_level"] == "warning")
    assert warning["given"] == SEED_FEATURES and warning["fed"] == FED

    name = TrainingPipeline().save_model("direction_predictor_001", model)
    assert load_model(name).feature_names_ == FED
    metadata = json.loads((store_dir / "model_001" / "metadata.json").read_text())
    assert metadata["features"] == FED and metadata["features_given"] == SEED_FEATURES
    assert len(metadata["feature_substitutions"]) == 5
    readme = (store_dir / "model_001" / "README.md").read_text()
    assert "atr_14 as natr_14" in readme


def test_a_substituted_model_serves_symbols_whose_prices_differ_by_five_orders(store_dir) -> None:
    data = _store()
    model = TrainingPipeline().train_model(
        {"type": "random_forest", "config": {"n_estimators": 10}, "features": SEED_FEATURES, "horizon": 5,
         "walk_forward_folds": 0},
        {s: c.iloc[-2_000:] for s, c in data.items()},
    )
    answers = {s: model.predict(symbol=s) for s in PRICES}
    assert all(isinstance(a, int) and 0 <= a <= 100 for a in answers.values())
    candles = data["XRP-USDT"].iloc[-1_600:]
    scaled = candles.assign(**{c: candles[c] * 60_000 for c in ("open", "high", "low", "close")},
                            volume=candles["volume"] / 7)
    # the same market at BTC's price level gets the same answer: nothing it reads is in price units
    assert model.predict(current_features=scaled) == model.predict(current_features=candles)
    assert model.performance_["n"] > 0


@pytest.mark.parametrize("name", ["close", "atr_14", "volume_sma_20"])
def test_a_kind_trained_on_one_raw_feature_is_fed_its_form(name, store_dir) -> None:
    data = _store(1_500)
    definition = {"type": "svm", "config": {"n_components": 30}, "features": [name], "walk_forward_folds": 0}
    model = TrainingPipeline().train_model(definition, data)
    assert model.feature_names_ == scale_free_features([name])[0]
    assert model.predict(symbol="BTC-USDT")["state"] in ("accelerating", "decelerating")


def test_the_record_follows_the_list_given_to_each_training(store_dir) -> None:
    _store(1_500)
    from app.ml import DirectionPredictor

    model = DirectionPredictor(n_estimators=5, features=["close", "rsi_14"])
    model.train(symbols=["BTC-USDT"], lookback_bars=1_000)
    model.train(symbols=["BTC-USDT"], lookback_bars=1_000)  # again, as fed: the given list stays
    assert model.training_["features_given"] == ["close", "rsi_14"]
    model.set_params(features=["returns", "rsi_14"]).train(symbols=["BTC-USDT"], lookback_bars=1_000)
    assert model.training_["features_given"] == ["returns", "rsi_14"]
    assert model.training_["feature_substitutions"] == []
