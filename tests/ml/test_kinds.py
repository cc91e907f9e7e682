"""Each kind: its answer's shape and ranges, safe save/load, refusal of wrong features, determinism."""

from __future__ import annotations

import json
import time

import numpy as np
import pandas as pd
import pytest
import torch

from app.core.errors import BadInput, IntegrityError
from app.ml import MODEL_KINDS, BaseModel, MomentumClassifier, PricePredictor
from app.ml.artifacts import load_skops, save_skops
from app.ml.dataset import build_dataset
from app.ml.splits import calibration_split, chronological_split
from tests.ml.synthetic import SMALL, market

KINDS = list(MODEL_KINDS)


def _holdout(model, data):
    ds = build_dataset(model, data)
    return ds.subset(chronological_split(ds.ts_ms, model.horizon, model.bar_ms).holdout)


def _answers(model, candles: pd.DataFrame, n: int = 40) -> list:
    return [model.predict(current_features=candles.iloc[: len(candles) - k]) for k in range(0, n * 7, 7)]


def test_direction_answers_up_or_down_with_the_probability_of_that_answer(rw_models, random_walk) -> None:
    answers = _answers(rw_models["direction"], random_walk["ETH-USDT"])
    assert all(set(a) == {"direction", "confidence"} and a["direction"] in ("UP", "DOWN") for a in answers)
    assert all(0.5 <= a["confidence"] <= 1.0 for a in answers)
    assert len({round(a["confidence"], 9) for a in answers}) > 1


def test_momentum_answers_a_state_with_its_probability(rw_models, random_walk) -> None:
    answers = _answers(rw_models["momentum"], random_walk["BTC-USDT"])
    assert all(a["state"] in ("accelerating", "decelerating") for a in answers)
    assert all(0.5 <= a["confidence"] <= 1 for a in answers)
    assert len({round(a["confidence"], 9) for a in answers}) > 1


def test_risk_answers_an_integer_percentile(rw_models, random_walk) -> None:
    answers = _answers(rw_models["risk"], random_walk["XRP-USDT"])
    assert all(type(a) is int and 0 <= a <= 100 for a in answers)
    assert len(set(answers)) > 1


def test_price_answers_a_price_near_the_close_with_a_varying_confidence(rw_models, random_walk) -> None:
    candles = random_walk["BTC-USDT"]
    answers = _answers(rw_models["price"], candles)
    close = candles["close"].iloc[-1]
    assert abs(answers[0]["predicted_price"] / close - 1) < 0.05
    assert all(0.0 <= a["confidence"] <= 1.0 for a in answers)
    assert len({round(a["confidence"], 9) for a in answers}) > 1


def test_volatility_answers_a_positive_volatility_with_a_confidence(rw_models, random_walk) -> None:
    answers = _answers(rw_models["volatility"], random_walk["BTC-USDT"], n=5)
    assert all(a["predicted_volatility"] > 0 and 0 <= a["confidence"] <= 1 for a in answers)
    pred, conf = rw_models["volatility"].outputs(*_xy_meta(rw_models["volatility"], random_walk))
    assert np.ptp(conf) > 0


def _xy_meta(model, data):
    holdout = _holdout(model, data)
    return holdout.X, holdout.meta


@pytest.mark.parametrize("kind", KINDS)
def test_round_trip_through_artifacts_gives_identical_predictions(
    kind, rw_models, random_walk, tmp_path
) -> None:
    model = rw_models[kind]
    X, meta = _xy_meta(model, random_walk)
    config = json.loads(json.dumps(model.save_artifacts(tmp_path)))
    loaded = BaseModel.load_artifacts(tmp_path, config)
    assert type(loaded) is type(model) and loaded.feature_names_ == model.feature_names_
    before, after = model.outputs(X, meta), loaded.outputs(X, meta)
    assert np.array_equal(before[0], after[0])
    assert (before[1] is None and after[1] is None) or np.array_equal(before[1], after[1])
    assert loaded.predict(current_features=random_walk["BTC-USDT"]) == model.predict(
        current_features=random_walk["BTC-USDT"])
    assert sorted(p.name for p in tmp_path.iterdir()) == [model.artifact_file]


def test_artifacts_are_safe_formats(rw_models, tmp_path) -> None:
    rw_models["direction"].save_artifacts(tmp_path / "d")
    json.loads((tmp_path / "d" / "model.json").read_text())
    rw_models["price"].save_artifacts(tmp_path / "p")
    state = torch.load(tmp_path / "p" / "model.pt", weights_only=True)
    assert all(isinstance(v, torch.Tensor) for v in state.values())


def test_a_skops_file_with_an_untrusted_type_is_refused(tmp_path) -> None:
    import os

    from sklearn.preprocessing import FunctionTransformer

    save_skops(FunctionTransformer(func=os.system), tmp_path / "model.skops")
    with pytest.raises(IntegrityError, match="not trusted"):
        load_skops(tmp_path / "model.skops", trusted=["sklearn.tree._tree.Tree"])


@pytest.mark.parametrize("kind", KINDS)
def test_a_model_asked_with_other_features_is_refused(kind, rw_models, random_walk) -> None:
    model = rw_models[kind]
    X, _ = _xy_meta(model, random_walk)
    with pytest.raises(IntegrityError, match="trained on features"):
        model.predict(X.rename(columns={X.columns[0]: "rsi_7"}))
    with pytest.raises(IntegrityError, match="unexpected \\['adx_30'\\]"):
        model.predict(symbol="BTC-USDT", current_features=X.assign(adx_30=1.0))


def test_non_scale_free_features_are_fed_in_their_scale_free_form(random_walk) -> None:
    model = MODEL_KINDS["direction"](features=["returns", "close", "atr_14"], n_estimators=5)
    model.train_on(random_walk)  # DESIGN 3: never refused (tests/seed/test_scale_free.py has the rest)
    assert model.feature_names_ == ["returns", "close_zscore_20", "natr_14"]
    assert model.training_["features_given"] == ["returns", "close", "atr_14"]


def test_direction_horizon_outside_one_to_five_is_refused_when_fitted_or_built() -> None:
    from app.ml.training import model_from_definition

    model = MODEL_KINDS["direction"](horizon=6)  # scikit-learn convention: __init__ only stores
    with pytest.raises(BadInput, match="1..5"):
        model.fit(np.zeros((50, len(model.features))), np.arange(50) % 2)
    with pytest.raises(BadInput, match="1..5"):
        model_from_definition({"kind": "direction", "horizon": 6})


def test_price_scaler_is_fitted_on_the_fit_rows_only(rw_models, random_walk) -> None:
    model = rw_models["price"]
    ds = build_dataset(model, random_walk)
    outer = chronological_split(ds.ts_ms, model.horizon, model.bar_ms)
    train = ds.subset(outer.train)
    inner = calibration_split(train.ts_ms, model.horizon, model.bar_ms)
    fit_mean = train.X[inner.train].to_numpy().mean(axis=0)
    assert np.allclose(model.scaler_["x_mean"], fit_mean, rtol=1e-12, atol=0)
    assert not np.allclose(model.scaler_["x_mean"], ds.X.to_numpy().mean(axis=0), rtol=1e-6, atol=0)


@pytest.mark.parametrize("kind", ["direction", "price"])
def test_changing_the_holdout_period_changes_nothing_fitted(kind, random_walk, rw_models) -> None:
    """Rewrite every candle from the holdout cut on: model, scaler and calibrator must stay identical."""
    reference = rw_models[kind]
    cut = pd.Timestamp(reference.training_["holdout_start"])
    rng = np.random.default_rng(9)
    altered = {}
    for symbol, candles in random_walk.items():
        c = candles.copy()
        tail = c.index >= cut
        factor = np.exp(np.cumsum(rng.normal(0, 0.01, tail.sum())))
        c.loc[tail, ["open", "high", "low", "close"]] *= factor[:, None]
        altered[symbol] = c
    model = MODEL_KINDS[kind](**SMALL[kind]).train_on(altered)
    assert model.calibration_ == reference.calibration_
    X, meta = _xy_meta(reference, random_walk)
    assert np.array_equal(model.outputs(X, meta)[0], reference.outputs(X, meta)[0])
    assert model.performance_["accuracy" if model.is_classifier else "rmse"] != pytest.approx(
        reference.performance_["accuracy" if model.is_classifier else "rmse"], rel=1e-9)


def test_torch_training_is_deterministic_under_a_seed(random_walk) -> None:
    data = {"BTC-USDT": random_walk["BTC-USDT"]}
    a, b, c = (PricePredictor(epochs=2, seed=s).train_on(data) for s in (7, 7, 8))
    sa, sb, sc = (m.estimator_.state_dict() for m in (a, b, c))
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not all(torch.equal(sa[k], sc[k]) for k in sa)


def test_svm_fits_a_week_of_three_symbols(record_property) -> None:
    data = market(7, seed=400)
    model = MomentumClassifier()
    ds = build_dataset(model, data)
    start = time.perf_counter()
    model.fit(ds.X, ds.y, ds.meta)
    seconds = time.perf_counter() - start
    record_property("svm_fit_seconds", seconds)
    print(f"\nSVM (Nystroem 300 + LinearSVC) fit on {len(ds)} rows: {seconds:.1f}s")
    assert len(ds) > 28_000 and model.calibration_["calibration_rows"] > 4_000
