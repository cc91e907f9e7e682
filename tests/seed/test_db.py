"""`app.db`: the seed's db.* calls, over the services and the events the cycle uses."""

from __future__ import annotations

import pytest

from app import db
from app.core.config import get_settings
from app.core.errors import Conflict, NotFound
from app.ml import TrainingPipeline
from app.services.models import get_model, model_events, record_event
from tests.seed.helpers import market, store


@pytest.fixture()
def saved(store_dir) -> dict:  # noqa: ANN001
    frames = market(2_000)
    store(frames)
    pipeline = TrainingPipeline()
    data = {s: c.iloc[-1_500:] for s, c in frames.items()}
    direction = pipeline.train_model({"type": "xgboost", "config": {"n_estimators": 10}, "horizon": 1,
                                       "walk_forward_folds": 0}, data)
    risk = pipeline.train_model({"type": "random_forest", "config": {"n_estimators": 8},
                                  "walk_forward_folds": 0}, data)
    return {"direction": db.save_model("direction_predictor_001", direction),
            "risk": db.save_model("risk_scorer", risk), "models": {"direction": direction, "risk": risk}}


def test_status_changes_are_the_lifecycles_with_their_events(saved) -> None:
    name = saved["direction"]
    assert db.update_model_status(name, "active") == "active"
    assert db.active_models() == [name] and db.active_models(kinds=["risk"]) == []
    assert [e.event for e in model_events(name)] == ["trained", "promoted"]
    with pytest.raises(Conflict, match="can become"):
        db.update_model_status(name, "candidate")
    with pytest.raises(NotFound):
        db.update_model_status("nope_001", "active")


def test_validation_results_are_the_holdout_numbers_with_accuracy_for_every_kind(saved) -> None:
    direction, risk = saved["models"]["direction"], saved["models"]["risk"]
    results = db.get_validation_results(saved["direction"])
    assert results["accuracy"] == pytest.approx(direction.performance_["accuracy"])
    assert results["skill_interval"] == get_model(saved["direction"]).performance["skill_interval"]
    assert db.get_last_backtest(saved["direction"])["f1"] == pytest.approx(direction.performance_["f1"])
    risk_results = db.get_validation_results(saved["risk"])
    assert risk_results["rmse"] == pytest.approx(risk.performance_["rmse"])
    assert risk_results["accuracy"] == pytest.approx(risk.performance_["seed_view"]["accuracy"])


def test_a_flag_stands_until_a_drift_check_or_a_retrain_answers_it(saved) -> None:
    name = saved["direction"]
    db.update_model_status(name, "active")
    assert db.get_flagged_for_retraining() == []
    db.flag_for_retraining(name)
    assert db.get_flagged_for_retraining() == [name]
    assert model_events(name)[-1].event == "flagged"  # the drift stage's own event
    record_event(name, "validated", "no skill drift")  # what the next cycle's drift check records
    assert db.get_flagged_for_retraining() == []
    db.flag_for_retraining(name)
    db.update_model_status(name, "archived")  # out of service: nothing to retrain
    assert db.get_flagged_for_retraining() == []
    with pytest.raises(NotFound):
        db.flag_for_retraining("nope_001")


def test_latest_data_is_the_newest_window_of_every_configured_symbol(saved) -> None:
    data = db.get_latest_data(days=1)
    assert sorted(data) == sorted(get_settings().symbols)
    assert all(len(c) == 1_440 for c in data.values())
    assert db.load_model("model_001").name_ == saved["direction"]
