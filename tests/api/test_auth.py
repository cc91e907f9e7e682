"""Key checks on routes, through real HTTP: 401 without or with a wrong key, 403 for a predict key on an
operator route, both header styles, environment keys, and the schemes shown on /docs."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from fastapi import APIRouter
from sqlmodel import func, select

from app.api.deps import OperatorAuth, PredictAuth, SessionDep
from app.core.config import reset_settings
from app.main import create_app
from app.services import keys
from app.tables.api_keys import ApiKey
from tests.api.server import serve

probe = APIRouter(prefix="/_auth_probe")


@probe.get("/read")
def read(role: PredictAuth) -> dict[str, str]:
    return {"role": role}


@probe.post("/change")
def change(role: OperatorAuth, session: SessionDep) -> dict[str, object]:
    return {"role": role, "keys": session.exec(select(func.count()).select_from(ApiKey)).one()}


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    app = create_app()
    app.include_router(probe)
    with serve(app) as url:
        yield url


@pytest.fixture()
def http(base_url: str) -> Iterator[httpx.Client]:
    keys.clear_cache()
    with httpx.Client(base_url=base_url, timeout=5) as client:
        yield client


def test_missing_key_is_401_saying_how_to_send_one(http: httpx.Client) -> None:
    response = http.get("/_auth_probe/read")

    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    detail = response.json()["detail"]
    assert "Authorization: Bearer <key>" in detail and "X-API-Key: <key>" in detail


def test_wrong_key_is_401(http: httpx.Client) -> None:
    keys.create_key("operator")
    response = http.get("/_auth_probe/read", headers={"X-API-Key": "mlp_not-a-real-key"})

    assert response.status_code == 401
    assert "invalid or revoked API key" in response.json()["detail"]


def test_non_bearer_authorization_counts_as_missing(http: httpx.Client) -> None:
    key = keys.create_key("predict")
    response = http.get("/_auth_probe/read", headers={"Authorization": f"Basic {key}"})
    assert response.status_code == 401
    assert "missing API key" in response.json()["detail"]


@pytest.mark.parametrize("style", ["bearer", "x-api-key"])
def test_predict_key_reads_in_either_header_style(http: httpx.Client, style: str) -> None:
    key = keys.create_key("predict")
    headers = {"Authorization": f"Bearer {key}"} if style == "bearer" else {"X-API-Key": key}

    response = http.get("/_auth_probe/read", headers=headers)

    assert response.status_code == 200
    assert response.json() == {"role": "predict"}


def test_predict_key_on_an_operator_route_is_403_asking_for_an_operator_key(http: httpx.Client) -> None:
    key = keys.create_key("predict")
    response = http.post("/_auth_probe/change", headers={"X-API-Key": key})

    assert response.status_code == 403
    assert "needs an operator key" in response.json()["detail"]


def test_operator_key_may_read_and_change(http: httpx.Client) -> None:
    key = keys.create_key("operator")
    headers = {"Authorization": f"Bearer {key}"}

    assert http.get("/_auth_probe/read", headers=headers).json() == {"role": "operator"}
    changed = http.post("/_auth_probe/change", headers=headers)
    assert changed.status_code == 200
    assert changed.json() == {"role": "operator", "keys": 1}


def test_revoked_key_is_refused(http: httpx.Client) -> None:
    key = keys.create_key("predict")
    assert http.get("/_auth_probe/read", headers={"X-API-Key": key}).status_code == 200

    keys.revoke(key[:8])

    assert http.get("/_auth_probe/read", headers={"X-API-Key": key}).status_code == 401


def test_environment_keys_work_over_http(http: httpx.Client, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PREDICT_API_KEY", "env-predict-over-http")
    monkeypatch.setenv("OPERATOR_API_KEY", "env-operator-over-http")
    reset_settings()
    try:
        read = http.get("/_auth_probe/read", headers={"Authorization": "Bearer env-predict-over-http"})
        assert read.json() == {"role": "predict"}
        change = http.post("/_auth_probe/change", headers={"X-API-Key": "env-operator-over-http"})
        assert change.json() == {"role": "operator", "keys": 0}
        refused = http.post("/_auth_probe/change", headers={"X-API-Key": "env-predict-over-http"})
        assert refused.status_code == 403
    finally:
        monkeypatch.delenv("PREDICT_API_KEY")
        monkeypatch.delenv("OPERATOR_API_KEY")
        reset_settings()


def test_docs_offer_both_key_schemes_on_protected_routes(http: httpx.Client) -> None:
    schema = http.get("/openapi.json").json()

    schemes = schema["components"]["securitySchemes"]
    assert schemes["BearerKey"] == {
        "type": "http", "scheme": "bearer", "description": schemes["BearerKey"]["description"]
    }
    assert schemes["ApiKeyHeader"]["type"] == "apiKey"
    assert schemes["ApiKeyHeader"]["in"] == "header" and schemes["ApiKeyHeader"]["name"] == "X-API-Key"
    security = schema["paths"]["/_auth_probe/change"]["post"]["security"]
    assert {"BearerKey": []} in security and {"ApiKeyHeader": []} in security
    assert "security" not in schema["paths"]["/health"]["get"]
