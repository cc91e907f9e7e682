"""POST /predict/{model} through real HTTP: champions, names, the three input styles, and every error."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from app.data.frames import candles_frame
from app.store.cache import get_cache
from tests.api.ml_setup import Trained, api_keys, save, store_all_candles


@pytest.fixture()
def setup(trained: Trained, base_url: str) -> Iterator[dict]:
    from app.services.feature_rows import get_feature_rows

    get_feature_rows().clear()
    store_all_candles(trained)
    names = {family: save(trained, family) for family in ("direction_small", "risk_rf", "price_mlp")}
    get_cache().reload("test")
    keys = api_keys()
    with httpx.Client(base_url=base_url, timeout=10) as http:
        yield {"http": http, "keys": keys, "names": names}
    get_cache().reload("test")


def test_direction_champion_answers_from_stored_candles(setup: dict, trained: Trained) -> None:
    r = setup["http"].post(
        "/predict/direction", json={"symbol": "BTC-USDT"}, headers=setup["keys"]["predict"]
    )

    assert r.status_code == 200, r.text
    body = r.json()
    own = _own_answer(trained, "direction_small", "BTC-USDT")  # the model itself, in this process
    assert body["direction"] == own["direction"]
    assert body["confidence"] == pytest.approx(own["confidence"], rel=1e-6)
    assert body["model"] == setup["names"]["direction_small"] and body["version"] == 1
    last_ts = int(trained.candles["BTC-USDT"]["ts"].iloc[-1])
    assert datetime.fromisoformat(body["as_of"]) == datetime.fromtimestamp(last_ts / 1000, UTC)
    assert body["data_source"] == "simulated" and body["input_source"] == "stored_candles"
    assert isinstance(body["out_of_distribution"], bool) and body["dissimilarity_index"] >= 0
    perf = trained.models["direction_small"].performance_
    assert body["skill"] == pytest.approx(perf["skill"]) and body["skill_interval"] == perf["skill_interval"]
    assert body["beats_baseline"] is perf["beats_baseline"]


@pytest.mark.parametrize("kind", ["direction", "risk", "price"])
def test_the_written_answer_is_the_response_models_document(setup: dict, kind: str) -> None:
    """The route writes its JSON itself (no response-model validation on the hot path): the document
    validates as `Prediction` (`BatchPrediction` for many symbols) and is the one pydantic writes from it."""
    import json

    from app.api.schemas import BatchPrediction, Prediction

    http, headers = setup["http"], setup["keys"]["predict"]
    for body, schema in (({"symbol": "BTC-USDT"}, Prediction),
                         ({"symbols": ["BTC-USDT", "NOPE-USDT"]}, BatchPrediction)):
        r = http.post(f"/predict/{kind}", json=body, headers=headers)
        assert r.status_code == 200, r.text
        assert r.headers["content-type"] == "application/json"
        parsed = schema.model_validate_json(r.content)
        assert json.loads(parsed.model_dump_json(exclude_unset=True)) == r.json()


def _own_answer(trained: Trained, family: str, symbol: str):  # noqa: ANN202
    """What the trained model answers in this process on the whole candle history of `symbol`."""
    return trained.models[family].predict(current_features=candles_frame(trained.candles[symbol]))


def test_same_answer_from_candles_in_the_body(setup: dict, trained: Trained) -> None:
    frame = trained.candles["BTC-USDT"].iloc[-600:]
    candles = frame[["ts", "open", "high", "low", "close", "volume"]].to_dict("records")
    stored = (
        setup["http"]
        .post("/predict/direction", json={"symbol": "BTC-USDT"}, headers=setup["keys"]["predict"])
        .json()
    )

    r = setup["http"].post(
        "/predict/direction",
        json={"symbol": "BTC-USDT", "candles": candles},
        headers=setup["keys"]["predict"],
    )

    assert r.status_code == 200, r.text
    assert r.json()["input_source"] == "candles"
    assert r.json()["direction"] == stored["direction"]
    assert r.json()["confidence"] == pytest.approx(stored["confidence"], rel=1e-6)


def test_features_in_the_body_and_a_far_away_input_is_flagged(setup: dict, trained: Trained) -> None:
    model = trained.models["direction_small"]
    ref = model.calibration_["dissimilarity"]
    normal = dict(zip(ref["features"], ref["mean"], strict=True))
    far = {f: v + 50 * s for (f, v), s in zip(normal.items(), ref["std"], strict=True)}
    http, key = setup["http"], setup["keys"]["predict"]

    near = http.post(
        "/predict/direction", json={"symbol": "BTC-USDT", "features": normal}, headers=key
    ).json()
    away = http.post("/predict/direction", json={"symbol": "BTC-USDT", "features": far}, headers=key).json()

    assert near["input_source"] == "features" and near["out_of_distribution"] is False
    assert (
        away["out_of_distribution"] is True and away["dissimilarity_index"] > 10 * near["dissimilarity_index"]
    )


def test_a_model_by_name_and_other_kinds_give_the_models_own_answer(setup: dict, trained: Trained) -> None:
    http, key = setup["http"], setup["keys"]["predict"]

    risk = http.post(f"/predict/{setup['names']['risk_rf']}", json={"symbol": "ETH-USDT"}, headers=key)
    price = http.post("/predict/price", json={"symbol": "ETH-USDT"}, headers=key)

    assert risk.status_code == 200, risk.text
    assert risk.json()["kind"] == "risk"
    assert risk.json()["risk"] == _own_answer(trained, "risk_rf", "ETH-USDT")
    assert price.status_code == 200, price.text
    own_price = _own_answer(trained, "price_mlp", "ETH-USDT")
    assert price.json()["predicted_price"] == pytest.approx(own_price["predicted_price"], rel=1e-6)
    assert price.json()["confidence"] == pytest.approx(own_price["confidence"], rel=1e-6)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "symbol"),
        ({"symbol": "btc"}, "symbol"),
        ({"symbol": "BTC-USDT", "features": {"returns": "x"}}, "features.returns"),
        (
            {
                "symbol": "BTC-USDT",
                "candles": [{"ts": 1, "open": -1, "high": 1, "low": 1, "close": 1, "volume": 1}],
            },
            "candles.0.open",
        ),
        ({"symbol": "BTC-USDT", "unknown": 1}, "unknown"),
    ],
)
def test_invalid_bodies_are_422_naming_the_field(setup: dict, body: dict, field: str) -> None:
    r = setup["http"].post("/predict/direction", json=body, headers=setup["keys"]["predict"])

    assert r.status_code == 422
    assert field in [e["field"] for e in r.json()["errors"]]


def test_missing_features_and_too_few_candles_are_422_saying_what_to_send(
    setup: dict, trained: Trained
) -> None:
    http, key = setup["http"], setup["keys"]["predict"]
    few = trained.candles["BTC-USDT"].iloc[-5:][["ts", "open", "high", "low", "close", "volume"]]

    missing = http.post(
        "/predict/direction", json={"symbol": "BTC-USDT", "features": {"returns": 0.1}}, headers=key
    )
    short = http.post(
        "/predict/direction", json={"symbol": "BTC-USDT", "candles": few.to_dict("records")}, headers=key
    )

    assert missing.status_code == 422 and "features: missing" in missing.json()["detail"]
    assert short.status_code == 422 and short.json()["detail"].startswith("candles")


def test_unknown_model_is_404_and_unknown_symbol_is_404(setup: dict) -> None:
    http, key = setup["http"], setup["keys"]["predict"]

    assert http.post("/predict/nope_001", json={"symbol": "BTC-USDT"}, headers=key).status_code == 404
    r = http.post("/predict/direction", json={"symbol": "DOGE-USDT"}, headers=key)
    assert r.status_code == 404 and "DOGE-USDT" in r.json()["detail"]


def test_a_kind_without_an_active_model_is_503(setup: dict) -> None:
    r = setup["http"].post("/predict/momentum", json={"symbol": "BTC-USDT"}, headers=setup["keys"]["predict"])

    assert r.status_code == 503 and "no active momentum model" in r.json()["detail"]


def test_an_expired_model_is_refused_with_503(setup: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    from dataclasses import replace

    cache = get_cache()
    snap = cache.snapshot
    name = snap.champions["direction"]
    old = replace(snap.models[name], created_ts=datetime.now(UTC) - timedelta(days=30))
    monkeypatch.setattr(cache, "_snapshot", replace(snap, models={**snap.models, name: old}))

    r = setup["http"].post(
        "/predict/direction", json={"symbol": "BTC-USDT"}, headers=setup["keys"]["predict"]
    )

    assert r.status_code == 503 and "expiry" in r.json()["detail"]


def test_keys_are_required(setup: dict) -> None:
    http = setup["http"]

    assert http.post("/predict/direction", json={"symbol": "BTC-USDT"}).status_code == 401
    bad = http.post("/predict/direction", json={"symbol": "BTC-USDT"}, headers={"X-API-Key": "mlp_wrong"})
    assert bad.status_code == 401


def test_served_predictions_are_logged_and_scored_into_live_performance(
    setup: dict, trained: Trained
) -> None:
    from app.services.prediction_log import drain_predictions, get_prediction_log, score_predictions

    frame = trained.candles["BTC-USDT"].iloc[-620:-20][["ts", "open", "high", "low", "close", "volume"]]
    http, key = setup["http"], setup["keys"]["predict"]
    served = http.post(
        "/predict/direction", json={"symbol": "BTC-USDT", "candles": frame.to_dict("records")}, headers=key
    ).json()
    get_prediction_log().flush()

    assert drain_predictions() == 1
    result = score_predictions()

    name = setup["names"]["direction_small"]
    assert result["models"] == [name]
    live = http.get(f"/models/{name}", headers=key).json()["live_performance"]
    close = trained.candles["BTC-USDT"]["close"].to_numpy()
    went_up = close[-20 - 1 + 3] > close[-20 - 1]
    assert live["trades_evaluated"] == 1
    assert live["accuracy"] == float((served["direction"] == "UP") == went_up)


def test_many_symbols_give_one_answer_each_in_order_with_an_error_per_symbol(setup: dict) -> None:
    from app.services.prediction_log import drain_predictions, get_prediction_log

    http, key = setup["http"], setup["keys"]["predict"]
    single = {s: http.post("/predict/direction", json={"symbol": s}, headers=key).json()
              for s in ("BTC-USDT", "ETH-USDT")}
    get_prediction_log().flush()
    drain_predictions()

    r = http.post("/predict/direction", json={"symbols": ["ETH-USDT", "DOGE-USDT", "BTC-USDT"]}, headers=key)

    assert r.status_code == 200, r.text
    body = r.json()
    assert body["model"] == setup["names"]["direction_small"] and body["kind"] == "direction"
    eth, doge, btc = body["predictions"]
    for got, symbol in ((eth, "ETH-USDT"), (btc, "BTC-USDT")):
        want = single[symbol]
        assert got["symbol"] == symbol
        assert (got["direction"], got["confidence"], got["as_of"]) == (
            want["direction"], want["confidence"], want["as_of"]
        )  # exactly the single call's answer
        assert got["dissimilarity_index"] == want["dissimilarity_index"]
    assert doge["symbol"] == "DOGE-USDT" and doge["status"] == 404 and "DOGE-USDT" in doge["error"]
    get_prediction_log().flush()
    assert drain_predictions() == 2  # each answer is logged (to be scored), the error is not


def test_many_symbols_are_refused_past_the_limit_or_with_body_inputs(setup: dict) -> None:
    http, key = setup["http"], setup["keys"]["predict"]

    over = http.post("/predict/direction", json={"symbols": ["BTC-USDT"] * 101}, headers=key)
    both = http.post("/predict/direction", json={"symbol": "BTC-USDT", "symbols": ["BTC-USDT"]}, headers=key)
    with_features = http.post(
        "/predict/direction", json={"symbols": ["BTC-USDT"], "features": {"returns": 0.1}}, headers=key
    )

    assert over.status_code == 422 and "symbols" in [e["field"] for e in over.json()["errors"]]
    assert both.status_code == 422 and "exactly one" in both.json()["detail"]
    assert with_features.status_code == 422 and "stored candles" in with_features.json()["detail"]


def test_the_client_asks_for_many_symbols_in_one_call(setup: dict, base_url: str) -> None:
    from app.client import Client

    with Client(base_url, api_key=setup["keys"]["predict"]["X-API-Key"]) as client:
        answers = client.predict_many("risk", ["BTC-USDT", "NOPE-USDT", "ETH-USDT"])
        one = client.predict("risk", "ETH-USDT")

    assert [a["symbol"] for a in answers] == ["BTC-USDT", "NOPE-USDT", "ETH-USDT"]
    assert answers[1]["status"] == 404
    assert answers[2]["risk"] == one["risk"] and 0 <= answers[0]["risk"] <= 100
