"""Neither leaky nor blind: chance on a random walk, clear skill on a planted signal, honest confidences."""

from __future__ import annotations

import math

import numpy as np
import pytest

from app.ml import DirectionPredictor
from app.ml.dataset import build_dataset
from app.ml.splits import chronological_split
from app.ml.validation import evaluate_dataset

CLASSIFIERS = ["direction", "momentum"]
REGRESSORS = ["risk", "price", "volatility"]


def chance_bound(p0: float, n: int, horizon: int, z: float = 3.0) -> float:
    """Highest accuracy chance allows: labels h bars long overlap, so only ~n/h rows are independent."""
    n_eff = max(1.0, n / horizon)
    return p0 + z * math.sqrt(p0 * (1 - p0) / n_eff)


def _holdout_chance(model, data) -> float:
    """The best a classifier can do on a random walk: the holdout's own majority frequency."""
    ds = build_dataset(model, data)
    split = chronological_split(ds.ts_ms, model.horizon, model.bar_ms)
    up = ds.y[split.holdout].mean()
    return max(up, 1 - up)


@pytest.mark.parametrize("kind", CLASSIFIERS)
def test_classifier_is_at_chance_on_a_random_walk(kind, rw_models, random_walk) -> None:
    model = rw_models[kind]
    perf = model.performance_
    bound = chance_bound(_holdout_chance(model, random_walk), perf["n"], model.horizon)
    assert perf["accuracy"] <= bound, f"{kind} accuracy {perf['accuracy']:.3f} above chance bound {bound:.3f}"


def test_chance_bound_catches_a_model_that_sees_the_future(random_walk) -> None:
    """The bound above is not vacuous: a feature carrying the label blows through it."""
    model = DirectionPredictor(n_estimators=10, features=["returns", "rsi_14"])
    ds = build_dataset(model, random_walk)
    leaked = ds.X.copy()
    leaked["returns"] = ds.y + np.random.default_rng(0).normal(0, 0.5, len(ds.y))
    split = chronological_split(ds.ts_ms, model.horizon, model.bar_ms)
    model.fit(leaked[split.train], ds.y[split.train], ds.meta[split.train])
    holdout = ds.subset(split.holdout)
    holdout = type(holdout)(leaked[split.holdout], holdout.y, holdout.meta)
    perf = evaluate_dataset(model, holdout)
    assert perf["accuracy"] > chance_bound(_holdout_chance(model, random_walk), perf["n"], model.horizon)


@pytest.mark.parametrize("kind", REGRESSORS)
def test_regressor_has_no_significant_skill_on_a_random_walk(kind, rw_models) -> None:
    perf = rw_models[kind].performance_
    assert perf["skill_tstat"] < 2.0, f"{kind} beats {perf['baseline']}: skill {perf['skill']:.3f}"
    assert perf["skill"] < 0.05


def test_direction_beats_every_baseline_on_a_planted_signal(planted_direction) -> None:
    perf = planted_direction.performance_
    assert perf["accuracy_skill"] > 0.1, perf
    assert perf["skill"] > 0.03 and perf["beats_baseline"] and perf["skill_interval"][0] > 0
    assert all(perf["accuracy"] > acc for acc in perf["baselines"].values())
    assert perf["roc_auc"] > 0.55


def test_direction_probabilities_are_calibrated_on_the_planted_holdout(planted_direction) -> None:
    table = planted_direction.performance_["reliability"]
    assert table["weighted_gap"] < 0.05, table
    assert abs(table["stated_mean"] - table["observed_rate"]) < 0.03
    assert len([b for b in table["bins"] if b["count"] >= 50]) >= 3  # it states more than one confidence


@pytest.mark.parametrize("kind", ["price", "volatility"])
def test_band_confidence_matches_holdout_coverage(kind, rw_models) -> None:
    coverage = rw_models[kind].performance_["coverage"]
    assert abs(coverage["stated_mean"] - coverage["observed_rate"]) < 0.15, coverage


def test_the_price_model_shrinks_to_the_random_walk_when_it_knows_nothing(rw_models) -> None:
    model = rw_models["price"]
    perf = model.performance_
    assert 0.0 <= model.shrinkage_ <= 1.0 and model.calibration_["shrinkage"] == model.shrinkage_
    assert model.shrinkage_ < 0.5, "a network with no information kept most of its noise"
    assert perf["skill_interval"][1] >= 0.0, f"significantly below the random walk: {perf['skill_interval']}"


def test_the_price_model_keeps_a_real_signal() -> None:
    from app.ml import PricePredictor

    # returns that a feature explains half of: the net learns it, the calibration slice confirms it, and
    # the prediction is kept (the factor is fitted, not a constant that would also shrink a real signal)
    rng = np.random.default_rng(3)
    X = rng.normal(size=(6000, 2))
    y = 0.004 * X[:, 0] + rng.normal(0, 0.004, 6000)
    model = PricePredictor(hidden_layers=[8], epochs=5, features=["a", "b"], horizon=60).fit(X, y)
    assert model.shrinkage_ > 0.7, model.calibration_
