"""Bad input over real HTTP is a 4xx saying what to fix, never a 500: malformed JSON, wrong types, NaN and
huge numbers, odd or overlong path segments (NUL bytes, non-ASCII digits, ids past a database integer),
lone surrogates, unknown fields, invalid statuses, out-of-range query parameters, and finite inputs so
extreme that a model's answer overflows."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from app.store.cache import get_cache
from tests.api.ml_setup import Trained, api_keys, save, store_all_candles

_CANDLE = {"ts": 1767225600000, "open": 100.0, "high": 101.0, "low": 99.0, "close": 100.5, "volume": 3.0}
_OK_ENSEMBLE = {"members": ["direction_a_001", "direction_b_001"]}


def _raw(text: str) -> bytes:
    return text.encode()


# (id, method, path, key role, body: dict = JSON, bytes = raw JSON, None = no body, status, field, words)
# `field` must be one of the answer's `errors[].field` (None: no field to name); `words` must be in `detail`.
CASES: list[tuple[str, str, str, str, Any, int, str | None, str]] = [
    # malformed bodies
    ("truncated JSON", "POST", "/predict/direction", "predict", b'{"symbol": "BTC-USDT"', 422, "body",
     "invalid JSON at character"),
    ("two JSON documents", "POST", "/predict/direction", "predict", b'{"symbol": "BTC-USDT"}{}', 422, "body",
     "Extra data"),
    ("UTF-16 BOM", "POST", "/predict/direction", "predict", b"\xff\xfe", 422, "body", "invalid JSON"),
    ("not UTF-8", "POST", "/predict/direction", "predict", b'{"symbol": "\xffBTC"}', 422, "body", "UTF-8"),
    ("nested past the recursion limit", "POST", "/predict/direction", "predict", b"[" * 5000 + b"]" * 5000,
     422, "body", "nested"),
    ("a list, not an object", "POST", "/predict/direction", "predict", b"[]", 422, "", "valid dictionary"),
    ("no body", "POST", "/predict/direction", "predict", b"", 422, "", "Field required"),
    ("NaN feature", "POST", "/predict/direction", "predict",
     b'{"symbol": "BTC-USDT", "features": {"rsi_14": NaN}}', 422, "features.rsi_14", "finite"),
    ("Infinity feature", "POST", "/predict/direction", "predict",
     b'{"symbol": "BTC-USDT", "features": {"rsi_14": -Infinity}}', 422, "features.rsi_14", "finite"),
    ("feature past the bound", "POST", "/predict/direction", "predict",
     {"symbol": "BTC-USDT", "features": {"rsi_14": 1e300}}, 422, "features.rsi_14", "less than or equal"),
    ("feature name with NUL", "POST", "/predict/direction", "predict",
     {"symbol": "BTC-USDT", "features": {"rsi\u0000": 1.0}}, 422, None, "feature name"),
    ("feature name a lone surrogate", "POST", "/predict/direction", "predict",
     _raw('{"symbol": "BTC-USDT", "features": {"\\ud800": 1.0}}'), 422, None, "UTF-8"),
    ("features as a list", "POST", "/predict/direction", "predict", {"symbol": "BTC-USDT", "features": [1]},
     422, "features", "valid dictionary"),
    ("as_of past 10^14", "POST", "/predict/direction", "predict",
     {"symbol": "BTC-USDT", "features": {}, "as_of": 10**30}, 422, "as_of", "less than or equal"),
    ("symbol a number", "POST", "/predict/direction", "predict", {"symbol": 5}, 422, "symbol",
     "valid string"),
    ("symbol lowercase", "POST", "/predict/direction", "predict", {"symbol": "btc-usdt"}, 422, "symbol",
     "BASE-QUOTE"),
    ("symbol with NUL", "POST", "/predict/direction", "predict", {"symbol": "BTC-USD\u0000"}, 422, "symbol",
     "BASE-QUOTE"),
    ("symbol with SQL", "POST", "/predict/direction", "predict", {"symbol": "BTC'; DROP TABLE models;--"},
     422, "symbol", "BASE-QUOTE"),
    ("unknown body field", "POST", "/predict/direction", "predict", {"symbol": "BTC-USDT", "horizon": 3}, 422,
     "horizon", "Extra inputs"),
    ("candles and features", "POST", "/predict/direction", "predict",
     {"symbol": "BTC-USDT", "candles": [_CANDLE], "features": {}}, 422, "candles", "not both"),
    ("empty candles", "POST", "/predict/direction", "predict", {"symbol": "BTC-USDT", "candles": []}, 422,
     "candles", "at least 1"),
    ("candle price zero", "POST", "/predict/direction", "predict",
     {"symbol": "BTC-USDT", "candles": [{**_CANDLE, "close": 0}]}, 422, "candles.0.close", "greater than 0"),
    ("candle price huge", "POST", "/predict/direction", "predict",
     {"symbol": "BTC-USDT", "candles": [{**_CANDLE, "high": 1e300}]}, 422, "candles.0.high", "less than"),
    ("candle volume negative", "POST", "/predict/direction", "predict",
     {"symbol": "BTC-USDT", "candles": [{**_CANDLE, "volume": -1}]}, 422, "candles.0.volume", "greater than"),
    ("candle ts fractional", "POST", "/predict/direction", "predict",
     {"symbol": "BTC-USDT", "candles": [{**_CANDLE, "ts": 1.5}]}, 422, "candles.0.ts", "valid integer"),
    ("candle NaN", "POST", "/predict/direction", "predict",
     _raw('{"symbol": "BTC-USDT", "candles": [{"ts": 1, "open": NaN, "high": 1, "low": 1, "close": 1, '
          '"volume": 1}]}'), 422, "candles.0.open", "finite"),
    ("candle as an array", "POST", "/predict/direction", "predict",
     {"symbol": "BTC-USDT", "candles": [[1, 2, 3, 4, 5, 6]]}, 422, "candles.0", "valid dictionary"),
    ("text/plain body", "POST", "/predict/direction", "predict", "text:{\"symbol\": \"BTC-USDT\"}", 422, "",
     "Content-Type: application/json"),
    # path parameters
    ("model NUL", "POST", "/predict/%00", "predict", {"symbol": "BTC-USDT"}, 422, "path.model", "model name"),
    ("model emoji", "POST", "/predict/%F0%9F%92%A9", "predict", {"symbol": "BTC-USDT"}, 422, "path.model",
     "model name"),
    ("model quote", "POST", "/predict/%27%3B--", "predict", {"symbol": "BTC-USDT"}, 422, "path.model",
     "model name"),
    ("model too long", "POST", "/predict/" + "a" * 300, "predict", {"symbol": "BTC-USDT"}, 422, "path.model",
     "at most 128"),
    ("model invalid UTF-8", "GET", "/models/%ED%A0%80", "predict", None, 422, "path.name", "model name"),
    ("model NUL on PATCH", "PATCH", "/models/%00", "operator", {"status": "archived"}, 422, "path.name",
     "model name"),
    ("ensemble id past int32", "POST", "/ensemble/99999999999999999999/predict", "predict",
     {"symbol": "BTC-USDT"}, 422, "path.ensemble_id", "ensemble id"),
    ("ensemble id a superscript digit", "GET", "/ensembles/%C2%B2", "predict", None, 422, "path.ensemble_id",
     "ensemble id"),
    ("ensemble id arabic digits", "GET", "/ensembles/%D9%A3", "predict", None, 422, "path.ensemble_id",
     "ensemble id"),
    ("ensemble id NUL", "GET", "/ensembles/%00", "predict", None, 422, "path.ensemble_id", "ensemble id"),
    ("ensemble id negative", "POST", "/ensembles/-1/backtest", "operator", None, 422, "path.ensemble_id",
     "ensemble id"),
    ("cycle id NUL", "GET", "/cycles/%00", "predict", None, 422, "path.cycle_id", "cycle id"),
    ("cycle id SQL", "GET", "/cycles/%27%20OR%201%3D1", "predict", None, 422, "path.cycle_id", "cycle id"),
    ("cycle id very long", "GET", "/cycles/" + "z" * 5000, "predict", None, 422, "path.cycle_id",
     "at most 64"),
    ("unknown cycle", "GET", "/cycles/0123456789abcdef", "predict", None, 404, None, "no cycle"),
    # query parameters
    ("limit zero", "GET", "/cycles?limit=0", "predict", None, 422, "query.limit", "greater than or equal"),
    ("limit huge", "GET", "/cycles?limit=99999999999999999999999", "predict", None, 422, "query.limit",
     "less than"),
    ("limit text", "GET", "/cycles?limit=abc", "predict", None, 422, "query.limit", "valid integer"),
    ("status filter unknown", "GET", "/models?status=bogus", "predict", None, 422, "query.status", "active"),
    ("kind filter NUL", "GET", "/models?kind=%00", "predict", None, 422, "query.kind", "direction"),
    ("feature names too long", "GET", "/features/BTC-USDT?names=" + "rsi_14," * 400, "predict", None, 422,
     "query.names", "at most"),
    ("bars zero", "GET", "/features/BTC-USDT?names=rsi_14&bars=0", "predict", None, 422, "query.bars",
     "greater than"),
    ("features timeframe unknown", "GET", "/features/BTC-USDT?names=rsi_14&timeframe=2m", "predict", None,
     422, "query.timeframe", "1m"),
    # model status changes
    ("status failed", "PATCH", "/models/direction_a_001", "operator", {"status": "failed"}, 422, "status",
     "'active' or 'archived'"),
    ("status null", "PATCH", "/models/direction_a_001", "operator", {"status": None}, 422, "status",
     "'active' or 'archived'"),
    ("status missing", "PATCH", "/models/direction_a_001", "operator", {}, 422, "status", "Field required"),
    ("reason with NUL", "PATCH", "/models/direction_a_001", "operator",
     {"status": "archived", "reason": "oops\u0000"}, 422, "reason", "printable text"),
    ("reason a lone surrogate", "PATCH", "/models/direction_a_001", "operator",
     _raw('{"status": "archived", "reason": "\\udfff"}'), 422, "reason", "UTF-8"),
    ("status of an unknown model", "PATCH", "/models/nope_001", "operator", {"status": "archived"}, 404, None,
     "nope_001"),
    # ensembles
    ("one member", "POST", "/ensembles", "operator", {"members": ["direction_a_001"]}, 422, "members",
     "at least 2"),
    ("member with NUL", "POST", "/ensembles", "operator", {"members": ["direction_a_001", "x\u0000"]}, 422,
     "members.1", "model name"),
    ("member a kind", "POST", "/ensembles", "operator", {"members": ["direction", "direction_a_001"]}, 422,
     "members", "not kinds"),
    ("member twice", "POST", "/ensembles", "operator", {"members": ["direction_a_001", "direction_a_001"]},
     422, "members", "once"),
    ("weights count", "POST", "/ensembles", "operator", {**_OK_ENSEMBLE, "weights": [1, 2, 3]}, 422,
     "weights", "one weight per member"),
    ("weights all zero", "POST", "/ensembles", "operator", {**_OK_ENSEMBLE, "weights": [0, 0]}, 422,
     "weights", "positive sum"),
    ("weights negative", "POST", "/ensembles", "operator", {**_OK_ENSEMBLE, "weights": [-1, 2]}, 422,
     "weights.0", "greater than or equal"),
    ("weights overflow", "POST", "/ensembles", "operator", {**_OK_ENSEMBLE, "weights": [1e308, 1e308]}, 422,
     "weights.0", "less than"),
    ("method unknown", "POST", "/ensembles", "operator", {**_OK_ENSEMBLE, "method": "median"}, 422, "method",
     "weighted_avg"),
    ("name pattern", "POST", "/ensembles", "operator", {**_OK_ENSEMBLE, "name": "ensemble_٣٣٣"}, 422, "name",
     "ensemble_"),
    ("description with NUL", "POST", "/ensembles", "operator", {**_OK_ENSEMBLE, "description": "a\u0000"},
     422, "description", "printable text"),
    ("backtest symbols NUL", "POST", "/ensembles/1/backtest", "operator", {"symbols": ["x\u0000y"]}, 422,
     "symbols.0", "BASE-QUOTE"),
    ("backtest symbols empty", "POST", "/ensembles/1/backtest", "operator", {"symbols": []}, 422, "symbols",
     "at least 1"),
    ("backtest days zero", "POST", "/ensembles/1/backtest", "operator", {"days_back": 0}, 422, "days_back",
     "greater than"),
    # cycles
    ("cycle symbols NUL", "POST", "/cycles", "operator", {"symbols": ["\u0000"]}, 422, "symbols.0",
     "BASE-QUOTE"),
    ("cycle symbols a string", "POST", "/cycles", "operator", {"symbols": "BTC-USDT"}, 422, "symbols",
     "valid list"),
    ("cycle window huge", "POST", "/cycles", "operator", {"window_days": 1e308}, 422, "window_days",
     "less than"),
    ("cycle unknown option", "POST", "/cycles", "operator", {"window_day": 3}, 422, "window_day",
     "Extra inputs"),
    ("cycle truncated JSON", "POST", "/cycles", "operator", b"{", 422, "body", "invalid JSON"),
]


def _send(base_url: str, method: str, path: str, headers: dict, body: Any) -> httpx.Response:
    kwargs: dict[str, Any] = {}
    if isinstance(body, bytes):
        kwargs["content"] = body
        headers = {**headers, "Content-Type": "application/json"}
    elif isinstance(body, str) and body.startswith("text:"):
        kwargs["content"] = body.removeprefix("text:").encode()
        headers = {**headers, "Content-Type": "text/plain"}
    elif body is not None:
        kwargs["json"] = body
    return httpx.request(method, base_url + path, headers=headers, timeout=30, **kwargs)


@pytest.mark.parametrize(
    ("method", "path", "role", "body", "status", "field", "words"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_bad_request_is_a_4xx_that_says_what_to_fix(
    base_url: str, method: str, path: str, role: str, body: Any, status: int, field: str | None, words: str
) -> None:
    answer = _send(base_url, method, path, api_keys()[role], body)

    assert answer.status_code == status, answer.text
    detail = answer.json()["detail"]
    assert isinstance(detail, str) and words in detail, detail
    if field is not None:
        assert field in [e["field"] for e in answer.json()["errors"]], answer.json()


@pytest.fixture()
def served(trained: Trained, base_url: str) -> Iterator[dict]:
    """Stored candles, active direction/risk/price models and an ensemble of the two direction models."""
    store_all_candles(trained, upto=700)
    names = {family: save(trained, family) for family in ("direction_small", "risk_rf", "price_mlp")}
    names["direction_deep"] = save(trained, "direction_deep", status="candidate")
    get_cache().reload("test")
    keys = api_keys()
    members = {"members": [names["direction_small"], names["direction_deep"]]}
    created = httpx.post(f"{base_url}/ensembles", json=members, headers=keys["operator"], timeout=30)
    assert created.status_code == 201, created.text
    yield {"keys": keys, "names": names, "ensemble": created.json()["id"], "trained": trained}
    get_cache().reload("test")


def _features(trained: Trained, family: str, value: float) -> dict[str, float]:
    return {name: value for name in trained.models[family].feature_names_}


@pytest.mark.parametrize("value", [1e15, -1e15])
def test_extreme_features_give_an_answer_or_a_422_never_a_500(
    base_url: str, served: dict, value: float
) -> None:
    trained, key = served["trained"], served["keys"]["predict"]
    for model, family in (("direction", "direction_small"), ("risk", "risk_rf"), ("price", "price_mlp")):
        body = {"symbol": "BTC-USDT", "features": _features(trained, family, value)}
        answer = _send(base_url, "POST", f"/predict/{model}", key, body)

        assert answer.status_code in (200, 422), answer.text
        if answer.status_code == 200:  # a finite answer, flagged as far from the training data
            assert answer.json()["out_of_distribution"] is True
        else:
            assert answer.json()["errors"][0]["field"] == "features"
            assert "not a finite number" in answer.json()["detail"]
    ensemble = _send(
        base_url, "POST", f"/ensemble/{served['ensemble']}/predict", key,
        {"symbol": "BTC-USDT", "features": _features(trained, "direction_small", value)},
    )
    assert ensemble.status_code == 200, ensemble.text


def test_extreme_candles_give_an_answer_or_a_422_never_a_500(base_url: str, served: dict) -> None:
    frame = served["trained"].candles["BTC-USDT"].iloc[-600:]
    rows = frame[["ts", "open", "high", "low", "close", "volume"]].to_dict("records")
    top, bottom = 1e12, 1e-12
    whipsaw = [
        {**r, "open": top if i % 2 else bottom, "close": bottom if i % 2 else top, "high": top, "low": bottom,
         "volume": 1e18 if i % 3 else 0.0}
        for i, r in enumerate(rows)
    ]
    flat = [{**r, "open": 1.0, "high": 1.0, "low": 1.0, "close": 1.0, "volume": 0.0} for r in rows]
    key = served["keys"]["predict"]
    for candles in (whipsaw, flat):
        for model in ("direction", "risk", "price"):
            body = {"symbol": "BTC-USDT", "candles": candles}
            answer = _send(base_url, "POST", f"/predict/{model}", key, body)
            assert answer.status_code in (200, 422), answer.text
            if answer.status_code == 422:
                assert answer.json()["errors"][0]["field"] == "candles", answer.text


def test_unordered_duplicate_and_inconsistent_candles_are_422(base_url: str, served: dict) -> None:
    frame = served["trained"].candles["BTC-USDT"].iloc[-600:]
    rows = frame[["ts", "open", "high", "low", "close", "volume"]].to_dict("records")
    key = served["keys"]["predict"]
    broken = {
        "reversed": (list(reversed(rows)), "sorted by ts"),
        "duplicate ts": (rows[:300] + rows[299:], "without duplicates"),
        "high below close": (rows[:-1] + [{**rows[-1], "high": rows[-1]["close"] / 2}], "high below"),
        "too few": (rows[:3], "not enough"),
    }
    for name, (candles, words) in broken.items():
        body = {"symbol": "BTC-USDT", "candles": candles}
        answer = _send(base_url, "POST", "/predict/direction", key, body)
        assert answer.status_code == 422, (name, answer.text)
        assert words in answer.json()["detail"] and answer.json()["errors"][0]["field"] == "candles", name


def test_ensemble_of_unknown_or_mixed_members_is_404_or_422(base_url: str, served: dict) -> None:
    names, op = served["names"], served["keys"]["operator"]
    unknown = _send(base_url, "POST", "/ensembles", op, {"members": [names["direction_small"], "nope_001"]})
    mixed = _send(
        base_url, "POST", "/ensembles", op, {"members": [names["direction_small"], names["risk_rf"]]}
    )

    assert unknown.status_code == 404 and "nope_001" in unknown.json()["detail"]
    assert mixed.status_code == 422 and mixed.json()["errors"][0]["field"] == "members"
    assert "one kind" in mixed.json()["detail"]


def test_a_body_over_the_limit_is_413_and_never_read_whole(base_url: str) -> None:
    from app.main import MAX_BODY_BYTES

    body = b'{"symbol": "BTC-USDT", "pad": "' + b"a" * MAX_BODY_BYTES + b'"}'
    r = httpx.post(f"{base_url}/predict/direction", content=body,
                   headers={"content-type": "application/json", "X-API-Key": "any"}, timeout=30)

    assert r.status_code == 413
