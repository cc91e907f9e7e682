"""POST /replays and GET /replays/{id} through real HTTP: queued as one RQ job with the checked spec; a
clear 4xx for bad dates, steps and roles; 404 for an unknown replay."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from rq.job import Job

from app.core.redis import rq_connection
from tests.api.ml_setup import api_keys

BODY = {"symbols": ["BTC-USDT", "ETH-USDT"], "from": "2021-04-05", "to": "2021-04-06T12:00:00Z",
        "every": "12h"}


@pytest.fixture()
def http(base_url: str, store_dir: object) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=base_url, timeout=10) as client:
        yield client


def test_an_operator_queues_a_replay_and_follows_it(http: httpx.Client) -> None:
    keys = api_keys()
    started = http.post("/replays", json=BODY, headers=keys["operator"])
    assert started.status_code == 202, started.text
    replay_id = started.json()["id"]
    job = Job.fetch(f"replay-{replay_id}", connection=rq_connection())
    spec = job.args[0]
    assert spec["from_ms"] == 1_617_580_800_000 and spec["to_ms"] == 1_617_710_400_000
    assert spec["every_hours"] == 12 and spec["symbols"] == BODY["symbols"]
    seen = http.get(f"/replays/{replay_id}", headers=keys["predict"])
    assert seen.status_code == 200 and seen.json()["state"] == "queued" and seen.json()["steps"] == []


@pytest.mark.parametrize(("change", "says"), [
    ({"from": "not a date"}, "date"),
    ({"every": "12 parsecs"}, "12h"),
    ({"from": "2021-05-01", "to": "2021-04-01"}, "before"),
    ({"every": "1m"}, "steps"),
])
def test_bad_replays_are_refused_with_what_to_fix(http: httpx.Client, change: dict, says: str) -> None:
    answer = http.post("/replays", json={**BODY, **change}, headers=api_keys()["operator"])
    assert answer.status_code == 422, answer.text
    assert says in answer.text


def test_roles_and_unknown_replays(http: httpx.Client) -> None:
    keys = api_keys()
    assert http.post("/replays", json=BODY, headers=keys["predict"]).status_code == 403
    assert http.post("/replays", json=BODY).status_code == 401
    missing = http.get("/replays/nosuchreplay", headers=keys["predict"])
    assert missing.status_code == 404 and "POST /replays" in missing.text
