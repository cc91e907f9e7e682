"""Liveness and readiness.

`/health` touches nothing and runs on the event loop, so it answers while every dependency hangs.
`/ready` probes the database and Redis each on its own daemon thread (never the request threadpool),
answers within `READY_TIMEOUT_SECONDS` whatever they do, shares one probe among concurrent callers (a
flood of `/ready` makes at most one call to each dependency at a time), and names what failed by the kind
of failure only: a driver's message carries hosts and user names.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
import time
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy import text

from app.core.config import get_settings
from app.core.db import get_engine
from app.core.redis import get_redis, redis_url

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
        "redis": {"ok": False, "latency_ms": 1500.0, "error": "no answer within 1.5 s"},
    },
    "failed": ["redis"],
    "models_loaded": 3,
}


@router.get(
    "/health",
    responses={200: {"description": "the process answers",
                     "content": {"application/json": {"example": {"status": "ok"}}}}},
)
async def health() -> dict[str, str]:
    """Liveness: the process answers."""
    return {"status": "ok"}


READY_TIMEOUT_SECONDS = 1.5
_REUSE_SECONDS = 0.5  # callers within this of a finished probe share its answer


def _reason(exc: BaseException) -> str:
    """What kind of failure, without the driver's text (it names hosts, ports and users)."""
    chain = [exc, exc.__cause__, exc.__context__, getattr(exc, "orig", None)]
    names = " ".join(type(e).__name__ for e in chain if e is not None).lower()
    if "timeout" in names:
        return f"{type(exc).__name__}: timed out"
    if "refused" in names or isinstance(exc.__cause__, ConnectionRefusedError):
        return f"{type(exc).__name__}: connection refused"
    return f"{type(exc).__name__}: does not answer"


def _timed(probe: Callable[[], Any]) -> Check:
    start = time.perf_counter()
    try:
        probe()
    except Exception as exc:  # any failure means "not ready"; the answer says which kind
        return Check(ok=False, latency_ms=_ms_since(start), error=_reason(exc))
    return Check(ok=True, latency_ms=_ms_since(start))


class _Probe:
    """One dependency's check: at most one call in flight, on a daemon thread, shared by its callers."""

    def __init__(self, probe: Callable[[], Any], target: Callable[[], str]) -> None:
        self._probe = probe
        self._target = target  # what is probed (its URL): a probe of another target is never shared
        self._lock = threading.Lock()
        self._running: dict[str, concurrent.futures.Future[Check]] = {}
        self._last: dict[str, tuple[float, Check]] = {}

    def _start(self, target: str) -> concurrent.futures.Future[Check]:
        with self._lock:
            running = self._running.get(target)
            if running is None or running.done():
                future: concurrent.futures.Future[Check] = concurrent.futures.Future()

                def run() -> None:
                    check = _timed(self._probe)
                    self._last[target] = (time.monotonic(), check)
                    if not future.done():
                        future.set_result(check)

                threading.Thread(target=run, name="ready-probe", daemon=True).start()
                self._running[target] = running = future
            return running

    async def check(self, timeout: float) -> Check:
        target = self._target()
        last = self._last.get(target)
        if last is not None and time.monotonic() - last[0] < _REUSE_SECONDS:
            return last[1]
        future = self._start(target)
        try:
            # shielded: a caller that stops waiting must not cancel the probe the others share
            return await asyncio.wait_for(asyncio.shield(asyncio.wrap_future(future)), timeout)
        except TimeoutError:
            waited = round(timeout * 1000, 2)
            return Check(ok=False, latency_ms=waited, error=f"no answer within {timeout:g} s")


def _ms_since(start: float) -> float:
    return round((time.perf_counter() - start) * 1000, 2)


def _select_one() -> None:
    with get_engine().connect() as conn:
        conn.execute(text("SELECT 1"))


_probes = {
    "database": _Probe(_select_one, lambda: get_settings().resolved_database_url),
    "redis": _Probe(lambda: get_redis().ping(), redis_url),
}


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
async def ready() -> JSONResponse:
    """Readiness: the database answers `SELECT 1` and Redis answers `PING` (503 naming what failed)."""
    names = ("database", "redis")
    results = await asyncio.gather(*(_probes[name].check(READY_TIMEOUT_SECONDS) for name in names))
    checks = dict(zip(names, results, strict=True))
    failed = [name for name, check in checks.items() if not check.ok]
    body = Readiness(
        status="unavailable" if failed else "ready",
        checks=checks,
        failed=failed,
        models_loaded=_models_loaded(),
    )
    return JSONResponse(body.model_dump(exclude_none=True), status_code=503 if failed else 200)
