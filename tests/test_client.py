"""`app.client.Client` over real HTTP: what it sends, how server errors surface, cycle polling, and that it
imports nothing beyond httpx and the standard library."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from app.api.errors import install_error_handlers
from app.client import Client, ClientError
from app.services import keys
from tests.api.server import serve

ROOT = Path(__file__).resolve().parents[1]


def test_importing_the_client_pulls_in_only_httpx_and_the_standard_library() -> None:
    code = """
import json, sys
before = set(sys.modules)
import app.client
new = {name.split(".")[0] for name in set(sys.modules) - before}
print(json.dumps(sorted(new - set(sys.stdlib_module_names))))
"""
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60, check=True
    )
    third_party = set(json.loads(result.stdout))

    assert not third_party & {"fastapi", "starlette", "sqlmodel", "sqlalchemy", "pandas", "numpy", "torch",
                              "xgboost", "sklearn", "redis", "pydantic", "prometheus_client"}
    httpx_and_its_own = {
        "app", "httpx", "httpcore", "h11", "h2", "hpack", "hyperframe", "anyio", "sniffio", "certifi", "idna",
        "socksio", "brotli", "zstandard", "_cffi_backend", "typing_extensions",
        "click", "rich", "pygments",  # httpx's optional command line, imported when present
    }
    assert third_party <= httpx_and_its_own, third_party - httpx_and_its_own


# --- against the real application -------------------------------------------------------------------


@pytest.fixture(scope="module")
def live_url() -> Iterator[str]:
    with serve() as url:
        yield url


def test_health_answers(live_url: str) -> None:
    with Client(live_url) as client:
        assert client.health() == {"status": "ok"}


def test_unknown_path_raises_404_with_the_servers_message(live_url: str) -> None:
    with Client(live_url) as client, pytest.raises(ClientError) as caught:
        client.cycle("../../nowhere/at/all")
    assert caught.value.status_code == 404
    assert caught.value.detail == "Not Found"


def test_missing_key_raises_401_saying_how_to_send_one(live_url: str) -> None:
    with Client(live_url) as client, pytest.raises(ClientError) as caught:
        client.models()
    assert caught.value.status_code == 401
    assert "X-API-Key" in caught.value.detail and "mlpipe keys create" in caught.value.detail


def test_key_is_sent_and_a_predict_key_cannot_change_state(live_url: str) -> None:
    key = keys.create_key("predict")
    with Client(live_url, api_key=key) as client:
        assert client.models() == []
        with pytest.raises(ClientError) as unknown:
            client.model("no_such_model")
        with pytest.raises(ClientError) as refused:
            client.set_status("no_such_model", "archived")

    assert unknown.value.status_code == 404 and "no_such_model" in unknown.value.detail
    assert refused.value.status_code == 403 and "operator key" in refused.value.detail


def test_api_key_can_come_from_the_environment(live_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLPIPE_API_KEY", keys.create_key("predict"))
    with Client(live_url) as client:
        assert client.models() == []


def test_unreachable_server_raises_client_error_without_status() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound but not listening: connections are refused
        with Client(f"http://127.0.0.1:{port}", timeout=2) as client, pytest.raises(ClientError) as caught:
            client.health()
    assert caught.value.status_code is None
    assert "cannot reach mlpipe" in caught.value.detail


# --- against a stand-in that scripts the answers the client must handle ----------------------------


class Strict(BaseModel):
    symbol: str


def _stand_in() -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)
    router = APIRouter()
    polls: dict[str, int] = {}

    @router.post("/predict/{model}")
    async def echo(model: str, request: Request) -> dict:
        return {"model": model, "body": await request.json(), "auth": request.headers.get("authorization")}

    @router.post("/ensemble/{ensemble_id}/predict")
    async def strict(ensemble_id: str, body: Strict) -> dict:
        return {"ensemble_id": ensemble_id, "symbol": body.symbol}

    @router.post("/cycles", status_code=202)
    async def start(request: Request) -> JSONResponse:
        options = json.loads(await request.body() or b"{}")
        if options.get("symbols") == ["BUSY-USDT"]:
            return JSONResponse({"detail": "a cycle is already running", "id": "c-running"}, status_code=409)
        cycle_id = "c-stuck" if options.get("symbols") == ["STUCK-USDT"] else "c-1"
        return JSONResponse({"id": cycle_id, "status": "queued"}, status_code=202)

    @router.get("/cycles/{cycle_id}")
    async def cycle(cycle_id: str) -> dict:
        polls[cycle_id] = polls.get(cycle_id, 0) + 1
        done = cycle_id == "c-1" and polls[cycle_id] >= 3
        return {"id": cycle_id, "status": "partial" if done else "running", "polls": polls[cycle_id]}

    app.include_router(router)
    return app


@pytest.fixture(scope="module")
def stand_in_url() -> Iterator[str]:
    with serve(_stand_in()) as url:
        yield url


def test_predict_sends_symbol_candles_features_and_the_key_as_json(stand_in_url: str) -> None:
    candles = np.array([[1_700_000_000_000, 1.0, 2.0, 0.5, 1.5, 10.0]])
    with Client(stand_in_url, api_key="mlp_test") as client:
        features = {"rsi_14": np.float32(31.5)}
        answer = client.predict("direction", "BTC-USDT", candles=candles, features=features)

    assert answer["model"] == "direction"
    assert answer["auth"] == "Bearer mlp_test"
    assert answer["body"] == {
        "symbol": "BTC-USDT",
        "candles": [[1_700_000_000_000, 1.0, 2.0, 0.5, 1.5, 10.0]],
        "features": {"rsi_14": 31.5},
    }


def test_invalid_body_raises_422_naming_the_field(stand_in_url: str) -> None:
    with Client(stand_in_url) as client, pytest.raises(ClientError) as caught:
        client._request("POST", "/ensemble/3/predict", body={"symbol": 5})
    assert caught.value.status_code == 422
    assert "symbol" in caught.value.detail
    assert caught.value.body["errors"][0]["field"] == "symbol"


def test_force_cycle_without_wait_returns_the_accepted_id(stand_in_url: str) -> None:
    with Client(stand_in_url) as client:
        assert client.force_cycle()["id"] == "c-1"


def test_force_cycle_with_wait_polls_until_the_cycle_finishes(stand_in_url: str) -> None:
    with Client(stand_in_url) as client:
        finished = client.force_cycle(wait=True, poll=0.01, timeout=10)
    assert finished["status"] == "partial" and finished["polls"] == 3


def test_force_cycle_gives_up_after_its_timeout(stand_in_url: str) -> None:
    with Client(stand_in_url) as client, pytest.raises(ClientError, match="still running") as caught:
        client.force_cycle(wait=True, poll=0.01, timeout=0.1, symbols=["STUCK-USDT"])
    assert caught.value.status_code is None and caught.value.body["id"] == "c-stuck"


def test_conflict_carries_the_running_cycle_id(stand_in_url: str) -> None:
    with Client(stand_in_url) as client, pytest.raises(ClientError) as caught:
        client.force_cycle(symbols=["BUSY-USDT"])
    assert caught.value.status_code == 409
    assert caught.value.detail == "a cycle is already running" and caught.value.body["id"] == "c-running"
