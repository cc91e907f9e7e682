"""The seed's ensembles: built from stored models' names, saved through the store, asked, backtested."""

from __future__ import annotations

import pytest

from app import db
from app.core.errors import BadInput
from app.features import FeatureManager
from app.ml import EnsemblePredictor, TrainingPipeline, ValidationPipeline, load_model
from app.services import ensembles
from tests.seed.helpers import market, store


def _p_up(answer: dict) -> float:
    return answer["confidence"] if answer["direction"] == "UP" else 1.0 - answer["confidence"]


@pytest.fixture()
def three_direction_models(store_dir) -> dict:  # noqa: ANN001
    frames = market(4_000)
    store(frames, 0, 2_500)
    pipeline = TrainingPipeline()
    data = {s: c.iloc[:2_500] for s, c in frames.items()}
    for depth in (2, 3, 4):
        definition = {"type": "xgboost", "config": {"n_estimators": 15, "max_depth": depth}, "horizon": 1,
                      "walk_forward_folds": 0}
        pipeline.save_model("direction_predictor", pipeline.train_model(definition, data))
    store(frames, 2_500)  # newer candles arrive: rows no member trained on
    return frames


def test_an_ensemble_of_model_names_is_saved_asked_and_backtested(three_direction_models) -> None:
    ensemble = EnsemblePredictor(
        models=["model_001", "model_002", "model_003"], weights=[0.5, 0.3, 0.2], method="weighted_avg"
    )
    assert ensemble.kind == "direction" and ensemble.names == ["model_001", "model_002", "model_003"]
    assert ensemble.save_config("ensemble_001") == "ensemble_001"
    record = ensembles.get_ensemble("ensemble_001")
    assert record.id is not None and record.models == ensemble.names and record.weights == [0.5, 0.3, 0.2]

    asked = ["close", "returns", "volume_sma_20", "atr_14"]
    features = FeatureManager().get_features("BTC-USDT", "1m", asked)
    pred = ensemble.predict(symbol="BTC-USDT", df=features)
    members = [_p_up(load_model(n).predict(symbol="BTC-USDT")) for n in ensemble.names]
    assert pred["direction"] in ("UP", "DOWN")
    assert _p_up(pred) == pytest.approx(0.5 * members[0] + 0.3 * members[1] + 0.2 * members[2])

    results = ValidationPipeline().backtest_ensemble("ensemble_001", symbols=["BTC-USDT", "ETH-USDT"],
                                                     days_back=7)
    assert 0 <= results["accuracy"] <= 1 and 0 <= results["f1"] <= 1 and results["eval_rows"] > 100
    assert set(results["members"]) == set(ensemble.names)
    assert all(0 <= m["accuracy"] <= 1 for m in results["members"].values())
    assert db.set_ensemble_active("ensemble_001") == "active"
    assert ensembles.get_ensemble("ensemble_001").status == "active"

    again = EnsemblePredictor(models=["model_002", "model_003"], method="voting")
    again.save_config("ensemble_001")  # saving a name again replaces it, a candidate until backtested
    record = ensembles.get_ensemble("ensemble_001")
    assert record.models == ["model_002", "model_003"] and record.status == "candidate"


def test_members_of_different_kinds_or_a_mix_of_names_and_models_are_refused(three_direction_models) -> None:
    data = {s: c.iloc[:2_500] for s, c in three_direction_models.items()}
    risk = TrainingPipeline().train_model({"type": "random_forest", "config": {"n_estimators": 5},
                                              "walk_forward_folds": 0}, data)
    TrainingPipeline().save_model("risk_scorer", risk)
    with pytest.raises(BadInput, match="one kind"):
        EnsemblePredictor(models=["model_001", "model_004"])
    with pytest.raises(BadInput, match="all members as names"):
        EnsemblePredictor(models=["model_001", risk])
