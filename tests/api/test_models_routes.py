"""GET /models, GET /models/{name}, PATCH /models/{name} through real HTTP."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from app.store.cache import get_cache
from tests.api.ml_setup import Trained, api_keys, save, store_all_candles


@pytest.fixture()
def ctx(trained: Trained, base_url: str) -> Iterator[dict]:
    store_all_candles(trained, upto=600)
    names = {"small": save(trained, "direction_small"), "deep": save(trained, "direction_deep", "candidate"),
             "risk": save(trained, "risk_rf")}
    get_cache().reload("test")
    with httpx.Client(base_url=base_url, timeout=10) as http:
        yield {"http": http, "keys": api_keys(), "names": names}


def test_list_filters_by_status_and_kind(ctx: dict) -> None:
    http, key = ctx["http"], ctx["keys"]["predict"]

    active = http.get("/models", params={"status": "active"}, headers=key).json()
    risk = http.get("/models", params={"kind": "risk"}, headers=key).json()

    assert {m["name"] for m in active} == {ctx["names"]["small"], ctx["names"]["risk"]}
    assert [m["name"] for m in risk] == [ctx["names"]["risk"]]
    assert http.get("/models", params={"kind": "banana"}, headers=key).status_code == 422


def test_one_model_shows_its_metadata(ctx: dict) -> None:
    r = ctx["http"].get(f"/models/{ctx['names']['small']}", headers=ctx["keys"]["predict"])

    body = r.json()
    assert r.status_code == 200 and body["type"] == "xgboost" and body["kind"] == "direction"
    assert body["feature_count"] == len(body["features"]) > 0 and body["champion"] is True
    assert "live_performance" in body and body["training"]["data_source"] == "simulated"
    lo, hi = body["skill_interval"]
    assert lo <= body["skill"] <= hi and body["beats_baseline"] is (lo > 0)
    assert body["performance"]["walk_forward"]["k"] == 4 and "intervals" in body["performance"]


def test_unknown_model_is_404(ctx: dict) -> None:
    assert ctx["http"].get("/models/nope_001", headers=ctx["keys"]["predict"]).status_code == 404


def test_patch_activates_and_the_champion_follows(ctx: dict) -> None:
    http, names = ctx["http"], ctx["names"]

    r = http.patch(f"/models/{names['small']}", json={"status": "archived"}, headers=ctx["keys"]["operator"])
    http.patch(f"/models/{names['deep']}", json={"status": "active"}, headers=ctx["keys"]["operator"])

    assert r.status_code == 200 and r.json()["status"] == "archived"
    served = http.post("/predict/direction", json={"symbol": "BTC-USDT"}, headers=ctx["keys"]["predict"])
    assert served.json()["model"] == names["deep"]


def test_patch_needs_an_operator_key_and_a_valid_status(ctx: dict) -> None:
    http, name = ctx["http"], ctx["names"]["small"]

    assert http.patch(f"/models/{name}", json={"status": "archived"}).status_code == 401
    assert http.patch(f"/models/{name}", json={"status": "archived"},
                      headers=ctx["keys"]["predict"]).status_code == 403
    bad = http.patch(f"/models/{name}", json={"status": "gone"}, headers=ctx["keys"]["operator"])
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "status"
    assert http.patch("/models/nope_001", json={"status": "archived"},
                      headers=ctx["keys"]["operator"]).status_code == 404
