"""The seed's Python API end to end: pipelines on given candles, and the kinds on stored candles."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from app.core.errors import BadInput
from app.data.candles import store_candles
from app.data.frames import index_ms
from app.ml import DirectionPredictor, PricePredictor, TrainingPipeline, ValidationPipeline
from tests.ml.synthetic import make_candles

SEED_DEF = {"type": "xgboost", "name": "direction_predictor_001",
            "config": {"n_estimators": 20, "max_depth": 6, "learning_rate": 0.1}}


def test_train_model_builds_the_seed_definition_and_validates_it(random_walk) -> None:
    model = TrainingPipeline().train_model(SEED_DEF, random_walk)
    assert isinstance(model, DirectionPredictor) and model.n_estimators == 20 and model.subsample == 0.8
    perf = model.performance_
    assert {"accuracy", "precision", "recall", "f1", "roc_auc", "baselines", "skill", "score", "trading",
            "reliability", "backtest_accuracy"} <= set(perf)
    assert perf["baseline"] == "base_rate" and perf["accuracy_baseline"] in ("majority", "last_move")
    assert perf["score"] == pytest.approx(100 * perf["skill"])
    training = model.training_
    assert training["symbols"] == sorted(random_walk) and training["train_ratio"] == 0.8
    assert pd.Timestamp(training["train_end"]) < pd.Timestamp(training["holdout_start"])


@pytest.mark.parametrize(("model_def", "message"), [
    ({"type": "lstm"}, "unknown model type"),
    ({"type": "random_forest", "config": {"n_trees": 5}}, "has no parameters \\['n_trees'\\]"),
    ({"type": "svm", "epochs": 3}, "unknown keys \\['epochs'\\]"),
])
def test_a_bad_definition_is_refused_with_what_to_fix(model_def, message, random_walk) -> None:
    with pytest.raises(BadInput, match=message):
        TrainingPipeline().train_model(model_def, random_walk)


def test_backtest_scores_only_rows_after_the_training_data(random_walk) -> None:
    early = {s: c.iloc[: 2 * 1440] for s, c in random_walk.items()}
    model = DirectionPredictor(n_estimators=10).train_on(early)
    result = ValidationPipeline().backtest_model(model, days_back=3, candles=random_walk)
    assert pd.Timestamp(result["start"]) > pd.Timestamp(model.training_["train_end"])
    assert result["n"] > 1000
    with pytest.raises(BadInput, match="overlaps the model's training data"):
        ValidationPipeline().evaluate(model, {s: c.iloc[:1500] for s, c in early.items()})


def test_backtest_on_the_training_window_reproduces_the_holdout_metrics(rw_models, random_walk) -> None:
    model = rw_models["volatility"]
    result = ValidationPipeline().backtest_model(model, symbols=sorted(random_walk), candles=random_walk)
    assert result["rmse"] == pytest.approx(model.performance_["rmse"])
    assert result["n"] == model.performance_["n"]


def _store(symbols: list[str], bars: int) -> dict[str, pd.DataFrame]:
    data = {}
    for i, symbol in enumerate(symbols):
        candles = make_candles(bars, seed=50 + i, price=100.0 * (i + 1))
        store_candles(symbol, candles.reset_index(drop=True).assign(ts=index_ms(candles.index)), "simulated")
        data[symbol] = candles
    return data


def test_seed_api_trains_predicts_and_backtests_on_stored_candles() -> None:
    _store(["BTC-USDT", "ETH-USDT"], 2_000)
    predictor = DirectionPredictor(n_estimators=10)
    predictor.train(
        symbols=["BTC-USDT", "ETH-USDT"], timeframe="1m", lookback_bars=1000, prediction_horizon=5
    )
    assert predictor.horizon == 5 and predictor.training_["data_source"] == "simulated"
    assert predictor.predict(symbol="BTC-USDT")["direction"] in ("UP", "DOWN")
    results = predictor.backtest(symbols=["BTC-USDT"], days_back=7)
    assert {"accuracy", "precision", "recall", "f1"} <= set(results) and results["symbols"] == ["BTC-USDT"]


def test_seed_pipeline_form_takes_feature_frames_and_trains_on_the_candles_behind_them() -> None:
    from app.features import FeatureManager, required_warmup

    data = _store(["BTC-USDT", "ETH-USDT"], 3_000)
    features = ["returns", "rsi_14", "natr_14", "volume_ratio_20"]
    frames = {s: FeatureManager().get_features(s, "1m", features, lookback_bars=2_000) for s in data}
    definition = {"type": "xgboost", "name": "direction_predictor_001", "config": {"n_estimators": 10}}

    from_frames = TrainingPipeline().train_model(definition, frames)
    start = {s: c.index.get_loc(frames[s].index.min()) - required_warmup(features) for s, c in data.items()}
    window = {s: c.iloc[start[s]:] for s, c in data.items()}  # the same span (and warm-up), as candles
    from_candles = TrainingPipeline().train_model({**definition, "features": features}, window)

    assert from_frames.feature_names_ == features
    assert from_frames.training_["data_points"] == from_candles.training_["data_points"]
    assert from_frames.performance_["accuracy"] == from_candles.performance_["accuracy"]
    seed_list = {s: f.assign(close=1.0) for s, f in frames.items()}  # the seed's list has raw `close`
    fed = TrainingPipeline().train_model(definition, seed_list)  # fed as close_zscore_20 (DESIGN 3)
    assert fed.feature_names_ == [*features, "close_zscore_20"]
    assert fed.training_["feature_substitutions"] == [{"given": "close", "fed": "close_zscore_20"}]


def test_price_from_features_alone_takes_the_close_from_the_store() -> None:
    data = _store(["BTC-USDT"], 1_200)
    model = PricePredictor(epochs=1).train_on(data)
    from app.features import compute_features

    features = compute_features(data["BTC-USDT"], model.feature_names_)
    answer = model.predict(symbol="BTC-USDT", current_features=features)
    assert answer == model.predict(current_features=data["BTC-USDT"])
    with pytest.raises(BadInput, match="needs the latest candles"):
        model.predict(current_features=features)


def test_save_through_the_store_and_load_back_predicts_the_same(random_walk, store_dir) -> None:
    from app.ml import load_model

    pipeline = TrainingPipeline()
    model = pipeline.train_model(SEED_DEF, random_walk)
    name = pipeline.save_model("direction_predictor_001", model)
    loaded = load_model(name)
    candles = random_walk["XRP-USDT"]
    assert loaded.predict(current_features=candles) == model.predict(current_features=candles)
    assert np.array_equal(loaded.predict_proba(model_rows := _features(model, candles)),
                          model.predict_proba(model_rows))


def _features(model, candles):
    from app.features import compute_features

    return compute_features(candles, model.feature_names_).dropna()


def test_data_source_is_where_the_stored_candles_came_from_not_the_setting() -> None:
    for i, (symbol, source) in enumerate([("BTC-USDT", "csv"), ("ETH-USDT", "exchange")]):
        candles = make_candles(1_500, seed=70 + i)
        store_candles(symbol, candles.reset_index(drop=True).assign(ts=index_ms(candles.index)), source)

    one = DirectionPredictor(n_estimators=5)
    one.train(symbols=["BTC-USDT"], lookback_bars=1_000, prediction_horizon=1)
    both = DirectionPredictor(n_estimators=5)
    both.train(symbols=["BTC-USDT", "ETH-USDT"], lookback_bars=1_000, prediction_horizon=1)

    assert one.training_["data_source"] == "csv"  # MARKET_DATA_SOURCE is `simulated` in the tests
    assert both.training_["data_source"] == "csv+exchange"


def test_the_pipeline_on_candles_handed_in_needs_no_database(random_walk, tmp_path, monkeypatch) -> None:
    from app.core.config import reset_settings

    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'empty.db'}")  # no tables at all
    reset_settings()
    try:
        definition = {"type": "xgboost", "config": {"n_estimators": 5}}
        model = TrainingPipeline().train_model(definition, random_walk)
    finally:
        monkeypatch.undo()
        reset_settings()

    assert model.training_["data_source"] == "unknown" and model.performance_["n"] > 0
