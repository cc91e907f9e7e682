"""Ensembles over HTTP: create, read, backtest beside the members, predict; and their errors."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest

from app.core.config import get_settings
from app.store.cache import get_cache
from tests.api.ml_setup import Trained, api_keys, save, store_all_candles


@pytest.fixture()
def ctx(trained: Trained, base_url: str, store_dir) -> Iterator[dict]:  # noqa: ANN001
    store_all_candles(trained)
    names = [save(trained, "direction_small"), save(trained, "direction_deep"), save(trained, "risk_rf")]
    get_cache().reload("test")
    with httpx.Client(base_url=base_url, timeout=60) as http:
        yield {"http": http, "keys": api_keys(), "names": names}


@pytest.mark.parametrize("method", ["weighted_avg", "voting", "stacking"])
def test_create_backtest_and_predict(ctx: dict, method: str) -> None:
    http, op, rd = ctx["http"], ctx["keys"]["operator"], ctx["keys"]["predict"]
    members = ctx["names"][:2]

    created = http.post("/ensembles", json={"members": members, "method": method}, headers=op)
    assert created.status_code == 201, created.text
    ens = created.json()
    assert ens["name"] == "ensemble_001" and ens["kind"] == "direction"
    assert (get_settings().model_store_dir / "ensembles" / "ensemble_001.json").exists()

    bt = http.post(f"/ensembles/{ens['id']}/backtest", json={"days_back": 2}, headers=op)
    assert bt.status_code == 200, bt.text
    results = bt.json()["results"]
    assert set(results["members"]) == set(members) and results["eval_rows"] > 0
    assert bt.json()["status"] == ("active" if results["beats_every_member"] else "rejected")
    saved = json.loads(
        (get_settings().model_store_dir / "ensembles" / "ensemble_001_results.json").read_text()
    )
    assert saved["ensemble"] == results["ensemble"]

    if method == "stacking":  # the meta-model was fitted only on rows after every member's training rows
        from datetime import datetime

        first_fit_row = datetime.fromisoformat(results["fit_start"])
        assert results["fit_rows"] > 0 and bt.json()["meta"]["rows"] == results["fit_rows"]
        ends = results["members_train_end"].values()
        assert all(first_fit_row > datetime.fromisoformat(end) for end in ends)
        # and the scored rows start after an embargo of h bars (h = 3 here), so no fitted label reaches them
        gap = datetime.fromisoformat(results["eval_start"]) - datetime.fromisoformat(results["fit_end"])
        assert gap.total_seconds() > 3 * 60

    pred = http.post(f"/ensemble/{ens['id']}/predict", json={"symbol": "BTC-USDT"}, headers=rd)
    assert pred.status_code == 200, pred.text
    body = pred.json()
    assert body["direction"] in ("UP", "DOWN") and [m["model"] for m in body["members"]] == members
    if method == "weighted_avg":  # no weights given: the members count equally
        assert _p_up(body) == pytest.approx(sum(_p_up(m) for m in body["members"]) / 2)


def test_a_config_file_dropped_in_the_store_becomes_an_ensemble(ctx: dict) -> None:
    directory = get_settings().model_store_dir / "ensembles"
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "ensemble_007.json").write_text(
        json.dumps(
            {"kind": "direction", "method": "weighted_avg", "models": ctx["names"][:2], "weights": [0.7, 0.3]}
        )
    )

    listed = ctx["http"].get("/ensembles", headers=ctx["keys"]["predict"]).json()
    got = ctx["http"].get("/ensembles/ensemble_007", headers=ctx["keys"]["predict"])
    pred = ctx["http"].post(
        "/ensemble/ensemble_007/predict", json={"symbol": "BTC-USDT"}, headers=ctx["keys"]["predict"]
    )

    assert [e["name"] for e in listed] == ["ensemble_007"]
    assert got.status_code == 200 and got.json()["weights"] == pytest.approx([0.7, 0.3])
    # the file's weights are the ones the blend uses: P(UP) = 0.7 * P1(UP) + 0.3 * P2(UP)
    assert pred.status_code == 200, pred.text
    assert _p_up(pred.json()) == pytest.approx(
        0.7 * _p_up(pred.json()["members"][0]) + 0.3 * _p_up(pred.json()["members"][1])
    )


def _p_up(answer: dict) -> float:
    return answer["confidence"] if answer["direction"] == "UP" else 1 - answer["confidence"]


def test_errors(ctx: dict) -> None:
    http, op, rd = ctx["http"], ctx["keys"]["operator"], ctx["keys"]["predict"]
    small, _deep, risk = ctx["names"]

    assert http.post("/ensembles", json={"members": [small, risk]}, headers=op).status_code == 422
    assert http.post("/ensembles", json={"members": [small, "nope_001"]}, headers=op).status_code == 404
    r = http.post("/ensembles", json={"members": [small, _deep], "weights": [1]}, headers=op)
    assert r.status_code == 422 and "weights" in r.json()["detail"]
    assert http.post("/ensembles", json={"members": [small, _deep]}, headers=rd).status_code == 403
    assert http.get("/ensembles/99", headers=rd).status_code == 404
    assert http.post("/ensemble/99/predict", json={"symbol": "BTC-USDT"}, headers=rd).status_code == 404
