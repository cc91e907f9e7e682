"""The OpenAPI page documents every operation for a user: a summary, request and answer examples that are
valid against their own schemas, and each error the operation can give (401/403 by the key it needs, 422
when it takes input). The checks walk every path, so a new endpoint without its examples fails here."""

from __future__ import annotations

from typing import Any

import httpx
import jsonschema_rs
import pytest
from fastapi.routing import APIRoute

from app.api.deps import predict_serving, require_operator, require_predict
from app.main import create_app
from app.store.cache import get_cache
from tests.api.ml_setup import Trained, save

APP = create_app()
SPEC = APP.openapi()
COMPONENTS = SPEC["components"]["schemas"]
METHODS = {"get", "post", "put", "patch", "delete"}
OPERATIONS = [
    (method.upper(), path, op)
    for path, item in SPEC["paths"].items()
    for method, op in item.items()
    if method in METHODS
]
IDS = [f"{m} {p}" for m, p, _ in OPERATIONS]
WITH_BODY = [(m, p, op) for m, p, op in OPERATIONS if "requestBody" in op]


def _resolve(schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = COMPONENTS[schema["$ref"].rsplit("/", 1)[-1]]
    return schema


def _examples(media: dict[str, Any]) -> list[Any]:
    """Whole-document examples of one media type: its own, else its schema's (an array's item examples)."""
    if "example" in media:
        return [media["example"]]
    if "examples" in media:
        return [e["value"] for e in media["examples"].values()]
    schema = media.get("schema") or {}
    if schema.get("type") == "array":
        return [[e] for e in _resolve(schema.get("items", {})).get("examples", [])]
    for option in _resolve(schema).get("anyOf", [schema]):  # `Body | None` is anyOf [Body, null]
        found = _resolve(option).get("examples", [])
        if found:
            return list(found)
    return []


def _validate(example: Any, schema: dict[str, Any]) -> list[str]:
    validator = jsonschema_rs.Draft202012Validator({**schema, "components": SPEC["components"]})
    return [f"{e.instance_path}: {e.message}" for e in validator.iter_errors(example)]


def _roles(route: APIRoute) -> set[Any]:
    found, todo = set(), [route.dependant]
    while todo:
        dependant = todo.pop()
        found.add(dependant.call)
        todo.extend(dependant.dependencies)
    return found & {require_operator, require_predict, predict_serving}  # predict_serving: a predict key


def _api_routes(routes: list[Any]) -> list[APIRoute]:
    """Every APIRoute; included routers are walked (FastAPI >= 0.16x wraps them, without a prefix here)."""
    found = []
    for route in routes:
        if isinstance(route, APIRoute):
            found.append(route)
        elif hasattr(route, "original_router"):
            found.extend(_api_routes(route.original_router.routes))
    return found


# The dashboard's pages serve people, not programs, and stay out of the schema (include_in_schema=False).
ROUTES = {
    (method, route.path_format): route
    for route in _api_routes(APP.routes)
    if route.include_in_schema
    for method in route.methods
}


def test_every_route_of_the_app_is_in_the_schema() -> None:
    documented = {(m, p) for m, p, _ in OPERATIONS}
    assert set(ROUTES) == documented
    assert len(documented) >= 16 and len(WITH_BODY) >= 6


@pytest.mark.parametrize(("method", "path", "op"), OPERATIONS, ids=IDS)
def test_operation_has_a_summary_and_a_description(method: str, path: str, op: dict) -> None:
    assert op.get("summary"), f"{method} {path}: no summary"
    assert op.get("description"), f"{method} {path}: no description (the route's docstring)"


@pytest.mark.parametrize(("method", "path", "op"), WITH_BODY, ids=[f"{m} {p}" for m, p, _ in WITH_BODY])
def test_request_body_has_an_example_valid_against_its_schema(method: str, path: str, op: dict) -> None:
    media = op["requestBody"]["content"]["application/json"]
    examples = _examples(media)
    assert examples, f"{method} {path}: the request body has no example"
    for example in examples:
        assert _validate(example, media["schema"]) == [], f"{method} {path}: request example {example}"


@pytest.mark.parametrize(("method", "path", "op"), OPERATIONS, ids=IDS)
def test_success_answer_has_an_example_valid_against_its_schema(method: str, path: str, op: dict) -> None:
    success = [code for code in op["responses"] if code.startswith("2")]
    assert len(success) == 1, f"{method} {path}: success codes {success}"
    content = op["responses"][success[0]].get("content", {})
    assert content, f"{method} {path}: the {success[0]} answer has no content"
    for media_type, media in content.items():
        examples = _examples(media)
        assert examples, f"{method} {path}: no example of the {success[0]} {media_type} answer"
        if "schema" in media and media_type == "application/json":
            for example in examples:
                assert _validate(example, media["schema"]) == [], f"{method} {path}: answer example"


@pytest.mark.parametrize(("method", "path", "op"), OPERATIONS, ids=IDS)
def test_error_answers_are_documented_with_schema_and_example(method: str, path: str, op: dict) -> None:
    route = ROUTES[(method, path)]
    roles = _roles(route)
    expected = set()
    if roles:
        expected.add("401")
    if require_operator in roles:
        expected.add("403")
    if op.get("parameters") or "requestBody" in op:
        expected.add("422")
    errors = {code: r for code, r in op["responses"].items() if code[0] in "45"}
    assert expected <= set(errors), f"{method} {path}: documents {sorted(errors)}, needs {sorted(expected)}"
    if not roles:
        assert not {"401", "403"} & set(errors), f"{method} {path} is open but documents key errors"
    for code, answer in errors.items():
        media = answer.get("content", {}).get("application/json")
        assert media and "schema" in media, f"{method} {path}: {code} has no JSON schema"
        examples = _examples(media)
        assert examples, f"{method} {path}: {code} has no example"
        for example in examples:
            assert _validate(example, media["schema"]) == [], f"{method} {path}: {code} example {example}"
            if "detail" in _resolve(media["schema"]).get("properties", {}):
                assert example.get("detail"), f"{method} {path}: {code} example has no detail message"


@pytest.mark.parametrize(("method", "path", "op"), OPERATIONS, ids=IDS)
def test_path_parameters_are_constrained(method: str, path: str, op: dict) -> None:
    """A free-form path segment reaches database queries; a pattern keeps NUL and odd bytes out (422)."""
    for param in op.get("parameters", []):
        if param["in"] == "path":
            schema = _resolve(param["schema"])
            assert schema.get("pattern") or schema.get("enum"), f"{method} {path}: {param['name']} is free"


@pytest.mark.parametrize("secured", [True, False])
def test_a_documented_422_matches_what_the_server_answers(base_url: str, secured: bool) -> None:
    """The documented validation-error shape is the one the error handler sends."""
    from tests.api.ml_setup import api_keys

    headers = api_keys()["predict"] if secured else {}
    answer = httpx.post(f"{base_url}/predict/direction", json={"symbol": "btc"}, headers=headers, timeout=10)
    schema = SPEC["paths"]["/predict/{model}"]["post"]["responses"][str(answer.status_code)]
    media = schema["content"]["application/json"]
    assert answer.status_code == (422 if secured else 401)
    assert _validate(answer.json(), media["schema"]) == []


def test_docs_page_renders_and_loads_the_schema(base_url: str) -> None:
    page = httpx.get(f"{base_url}/docs", timeout=10)
    served = httpx.get(f"{base_url}/openapi.json", timeout=10)

    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert "swagger-ui" in page.text and "/openapi.json" in page.text
    assert served.status_code == 200
    assert served.json()["paths"].keys() == SPEC["paths"].keys()


def test_ready_counts_the_models_held_in_memory(base_url: str, trained: Trained) -> None:
    save(trained, "direction_small")
    save(trained, "risk_rf")
    save(trained, "direction_deep", status="candidate")
    get_cache().reload("test")
    try:
        answer = httpx.get(f"{base_url}/ready", timeout=10)
    finally:
        get_cache().reload("test")

    assert answer.status_code == 200
    assert answer.json()["status"] == "ready" and answer.json()["models_loaded"] == 2
