"""Liveness and readiness."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy import text

from app.core.db import get_engine
from app.core.redis import get_redis

router = APIRouter(tags=["health"])


class Check(BaseModel):
    ok: bool
    latency_ms: float = Field(description="time the check took")
    error: str | None = Field(default=None, description="why it failed, when it did")


class Readiness(BaseModel):
    status: str = Field(description="`ready`, or `unavailable` when a dependency does not answer")
    checks: dict[str, Check] = Field(description="`database` (SELECT 1) and `redis` (PING)")
    failed: list[str] = Field(default_factory=list, description="the checks that failed")
    models_loaded: int = Field(description="active models held in this API process's memory")


READY_EXAMPLE = {
    "status": "ready",
    "checks": {"database": {"ok": True, "latency_ms": 0.8}, "redis": {"ok": True, "latency_ms": 0.3}},
    "failed": [],
    "models_loaded": 3,
}
READY_DOWN_EXAMPLE = {
    "status": "unavailable",
    "checks": {
        "database": {"ok": True, "latency_ms": 0.8},
        "redis": {"ok": False, "latency_ms": 1001.2, "error": "ConnectionError: Error 111 connecting"},
    },
    "failed": ["redis"],
    "models_loaded": 3,
}


@router.get(
    "/health",
    responses={200: {"description": "the process answers",
                     "content": {"application/json": {"example": {"status": "ok"}}}}},
)
def health() -> dict[str, str]:
    """Liveness: the process answers."""
    return {"status": "ok"}


def _timed(probe: Callable[[], Any]) -> Check:
    start = time.perf_counter()
    try:
        probe()
    except Exception as exc:  # any failure means "not ready"; the answer carries its cause
        return Check(ok=False, latency_ms=_ms_since(start), error=f"{type(exc).__name__}: {exc}"[:300])
    return Check(ok=True, latency_ms=_ms_since(start))


def _ms_since(start: float) -> float:
    return round((time.perf_counter() - start) * 1000, 2)


def _select_one() -> None:
    with get_engine().connect() as conn:
        conn.execute(text("SELECT 1"))


def _models_loaded() -> int:
    from app.store.cache import get_cache

    return len(get_cache().snapshot.models)


@router.get(
    "/ready",
    response_model=Readiness,
    responses={
        200: {
            "description": "the database and Redis answer; `models_loaded` active models in memory",
            "content": {"application/json": {"example": READY_EXAMPLE}},
        },
        503: {
            "model": Readiness,
            "description": "the database or Redis does not answer (see `failed`)",
            "content": {"application/json": {"example": READY_DOWN_EXAMPLE}},
        },
    },
)
def ready() -> JSONResponse:
    """Readiness: the database answers `SELECT 1` and Redis answers `PING` (503 naming what failed)."""
    checks = {"database": _timed(_select_one), "redis": _timed(lambda: get_redis().ping())}
    failed = [name for name, check in checks.items() if not check.ok]
    body = Readiness(
        status="unavailable" if failed else "ready",
        checks=checks,
        failed=failed,
        models_loaded=_models_loaded(),
    )
    return JSONResponse(body.model_dump(exclude_none=True), status_code=503 if failed else 200)
