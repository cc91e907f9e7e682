"""POST /ensembles takes the seed's words (`models`, `weights`, `method`); GET gives the same body back."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from app.store.cache import get_cache
from tests.api.ml_setup import Trained, api_keys, save, store_all_candles


@pytest.fixture()
def ctx(trained: Trained, base_url: str, store_dir) -> Iterator[dict]:  # noqa: ANN001
    store_all_candles(trained)
    names = [save(trained, "direction_small"), save(trained, "direction_deep")]
    get_cache().reload("test")
    with httpx.Client(base_url=base_url, timeout=60) as http:
        yield {"http": http, "keys": api_keys(), "names": names}


def test_models_weights_and_method_go_in_and_come_back_out(ctx: dict) -> None:
    http, op, rd = ctx["http"], ctx["keys"]["operator"], ctx["keys"]["predict"]
    body = {"models": ctx["names"], "weights": [0.75, 0.25], "method": "weighted_avg"}
    created = http.post("/ensembles", json=body, headers=op)
    assert created.status_code == 201, created.text
    got = http.get(f"/ensembles/{created.json()['name']}", headers=rd).json()
    assert {k: got[k] for k in body} == body
    again = http.post("/ensembles", json={k: got[k] for k in body}, headers=op)  # GET's body, POSTed
    assert again.status_code == 201 and again.json()["models"] == ctx["names"]


def test_members_is_still_accepted_and_both_at_once_are_refused(ctx: dict) -> None:
    http, op, rd = ctx["http"], ctx["keys"]["operator"], ctx["keys"]["predict"]
    old = http.post("/ensembles", json={"members": ctx["names"], "method": "voting"}, headers=op)
    assert old.status_code == 201 and old.json()["models"] == ctx["names"]
    both = http.post("/ensembles", json={"members": ctx["names"], "models": ctx["names"]}, headers=op)
    assert both.status_code == 422
    twice = http.post("/ensembles", json={"models": [ctx["names"][0]] * 2}, headers=op)
    assert twice.status_code == 422 and "models: each model may appear once" in twice.text  # as sent
    unknown = http.post("/ensemble/ensemble_999/predict", json={"symbol": "BTC-USDT"}, headers=rd)
    assert unknown.status_code == 404 and "ensemble_999" in unknown.json()["detail"]
