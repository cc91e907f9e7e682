"""POST /tuning (operator key, 202 + id) and GET /tuning/{id} over real HTTP; invalid search spaces are a
422 naming the culprit, an unknown definition a 404 (no worker runs here: the study stays queued)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.api.ml_setup import api_keys
from tests.tuning.helpers import seed


@pytest.fixture()
def keys(base_url: str) -> Iterator[dict]:
    seed(0.3)
    yield api_keys()


@pytest.mark.parametrize(("space", "words"), [
    ({"params": {"max_depth": {"low": 8, "high": 2}}}, "max_depth': low (8) is above high (2)"),
    ({"features": ["returns", "no_such_feature"]}, "unknown feature 'no_such_feature'"),
    ({"params": {"n_neighbours": {"low": 1, "high": 5}}}, "has no parameter 'n_neighbours'"),
    ({"features": ["returns", "close"]}, "'close' is not scale-free"),
])
def test_an_invalid_search_space_is_a_422_naming_it(
    base_url: str, keys: dict, space: dict, words: str
) -> None:
    body = {"definition": "direction_predictor", "trials": 3, "search_space": space}
    answer = httpx.post(f"{base_url}/tuning", json=body, headers=keys["operator"], timeout=30)
    assert answer.status_code == 422, answer.text
    assert words in answer.json()["detail"]
    assert httpx.get(f"{base_url}/tuning", headers=keys["predict"], timeout=30).json() == []


def test_an_unknown_definition_is_a_404_and_a_predict_key_may_not_start_a_study(
    base_url: str, keys: dict
) -> None:
    answer = httpx.post(f"{base_url}/tuning", json={"definition": "nope"}, headers=keys["operator"],
                        timeout=30)
    assert answer.status_code == 404 and "direction_predictor" in answer.json()["detail"]
    refused = httpx.post(f"{base_url}/tuning", json={"definition": "direction_predictor"},
                         headers=keys["predict"], timeout=30)
    assert refused.status_code == 403


def test_a_study_started_over_http_is_queued_with_the_current_definition_as_its_first_trial(
    base_url: str, keys: dict
) -> None:
    body = {"definition": "direction_predictor", "trials": 4, "minutes": 2}
    answer = httpx.post(f"{base_url}/tuning", json=body, headers=keys["operator"], timeout=30)
    assert answer.status_code == 202, answer.text
    study_id = answer.json()["id"]
    view = httpx.get(f"{base_url}/tuning/{study_id}", headers=keys["predict"], timeout=30).json()
    assert view["status"] == "queued" and view["trigger"] == "api"
    assert view["budget"] == {"trials": 4, "seconds": 120.0}
    assert [t["state"] for t in view["trials"]] == ["waiting"]
    first = view["trials"][0]["params"]
    assert first["max_depth"] == 6 and first["use:vwap_dist"] is True  # config/models.yaml's definition
    listed = httpx.get(f"{base_url}/tuning", headers=keys["predict"], timeout=30).json()
    assert [s["id"] for s in listed] == [study_id]
    missing = httpx.get(f"{base_url}/tuning/st_000000000000", headers=keys["predict"], timeout=30)
    assert missing.status_code == 404
