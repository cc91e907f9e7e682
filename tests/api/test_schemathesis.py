"""Property-based run of the OpenAPI schema of the prediction, model and ensemble endpoints: no 500 and no
answer that violates the schema, whatever the body (bounded so it stays well under a minute)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from app.store.cache import get_cache, reset_cache
from tests.api.ml_setup import Trained, api_keys, save, store_all_candles
from tests.api.server import serve


@pytest.fixture(scope="module")
def api_schema(trained: Trained) -> Iterator[object]:
    reset_cache()
    with serve() as url:
        schema = schemathesis.openapi.from_url(f"{url}/openapi.json")
        schema.config.update(base_url=url)
        yield schema.include(path_regex=r"^/(predict|ensemble|ensembles|models)")
    reset_cache()


@pytest.fixture()
def auth(trained: Trained) -> dict:
    store_all_candles(trained, upto=700)
    save(trained, "direction_small")
    get_cache().reload("test")
    return api_keys()["operator"]


def test_no_server_error_and_answers_match_the_schema(api_schema, auth: dict) -> None:  # noqa: ANN001
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 8
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=10, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True,
                  database=None)
        def run(case) -> None:  # noqa: ANN001
            case.call_and_validate(headers=auth, checks=[not_a_server_error, response_schema_conformance])

        run()
