"""`/ready` answers 200 only when the database and Redis both answer, and names what failed otherwise."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator

import httpx
import pytest

from app.core.config import reset_settings
from app.core.redis import reset_redis
from app.main import create_app


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # closed again when the block ends: nothing listens there


class _Client:
    """Requests straight into the ASGI app (no lifespan, so no model-cache thread shares the clients)."""

    def __init__(self) -> None:
        self.app = create_app()

    def get(self, path: str) -> httpx.Response:
        async def call() -> httpx.Response:
            transport = httpx.ASGITransport(app=self.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
                return await http.get(path)

        return asyncio.run(call())


@pytest.fixture()
def client() -> Iterator[_Client]:
    yield _Client()
    reset_settings()
    reset_redis()


def test_ready_reports_both_checks_with_latency_when_everything_answers(client: _Client) -> None:
    answer = client.get("/ready")

    assert answer.status_code == 200
    body = answer.json()
    assert body["status"] == "ready"
    assert body["failed"] == []
    assert body["models_loaded"] == 0
    for name in ("database", "redis"):
        assert body["checks"][name]["ok"] is True
        assert body["checks"][name]["latency_ms"] >= 0


def test_ready_is_503_naming_redis_when_redis_does_not_answer(
    client: _Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REDIS_URL", f"redis://127.0.0.1:{_closed_port()}/0")
    reset_settings()

    answer = client.get("/ready")

    assert answer.status_code == 503
    body = answer.json()
    assert body["failed"] == ["redis"]
    assert body["checks"]["database"]["ok"] is True
    assert "Connection" in body["checks"]["redis"]["error"]


def test_ready_is_503_naming_the_database_when_it_does_not_answer(
    client: _Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", f"postgresql+psycopg://nobody@127.0.0.1:{_closed_port()}/none")
    reset_settings()

    answer = client.get("/ready")

    assert answer.status_code == 503
    body = answer.json()
    assert body["status"] == "unavailable"
    assert body["failed"] == ["database"]
    assert body["checks"]["redis"]["ok"] is True
    assert body["checks"]["database"]["error"]


def test_health_answers_without_touching_any_dependency(
    client: _Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REDIS_URL", f"redis://127.0.0.1:{_closed_port()}/0")
    reset_settings()

    assert client.get("/health").json() == {"status": "ok"}
