"""Model cycles: force one (operator), list them, follow one's stage and per-model progress."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Path, Query, status
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from app.api.deps import OperatorAuth, PredictAuth
from app.api.docs import errors
from app.api.schemas import CYCLE_ID_PATTERN, Symbol
from app.services import cycle as cycles

router = APIRouter(prefix="/cycles", tags=["cycles"])


class CycleRequest(BaseModel):
    """Optional: the rolling window and the markets; the body may be left out."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"window_days": 7, "symbols": ["BTC-USDT", "ETH-USDT"]}]},
    )

    window_days: float | None = Field(default=None, gt=0, le=365, description="rolling window (default 7)")
    symbols: list[Symbol] | None = Field(
        default=None, min_length=1, max_length=50, description="default: the SYMBOLS setting"
    )


class CycleStarted(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"id": "5f0c1e0b2f7a4a0e9d3c0b8f4c1d2e3a", "status": "queued"}]}
    )

    id: str = Field(examples=["5f0c1e0b2f7a4a0e9d3c0b8f4c1d2e3a"])
    status: Literal["queued"] = "queued"


_CYCLE_EXAMPLE = {
    "id": "5f0c1e0b2f7a4a0e9d3c0b8f4c1d2e3a", "status": "running", "trigger": "operator", "stage": "build",
    "progress": {"direction_xgb": {"state": "done", "model": "direction_xgb_004", "score": 4.2},
                 "risk_rf": {"state": "training"}},
    "results": {"window": {"days": 7, "symbols": ["BTC-USDT"]}},
    "timings": {"ingest": 3.1},
    "errors": [],
    "created_ts": "2026-01-01T00:00:00+00:00", "started_ts": "2026-01-01T00:00:01+00:00", "finished_ts": None,
}


class CycleView(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [_CYCLE_EXAMPLE]})

    id: str
    status: str = Field(description="queued | running | succeeded | partial | failed | interrupted")
    trigger: str
    stage: str = Field(description="queued | ingest | build | rank | drift | retrain | finish | done")
    progress: dict[str, Any] = Field(description="per model definition (and retrain): state, model, score")
    results: dict[str, Any] = Field(description="window, ranking decisions, drift report, retrains")
    timings: dict[str, Any] = Field(description="seconds per stage and per job, total")
    errors: list[dict[str, Any]]
    created_ts: str | None = None
    heartbeat_ts: str | None = Field(default=None, description="last sign of life of one of its jobs")
    started_ts: str | None = None
    finished_ts: str | None = Field(default=None, description="null until the cycle has finished")


_START_ERRORS = errors(
    401, 403, 409, 422,
    conflict="a cycle is already running: `id` names it",
    invalid="invalid body, or a models config that cannot be built",
    example={409: {"detail": "cycle 5f0c1e0b2f7a4a0e9d3c0b8f4c1d2e3a is still running; wait for it "
                             "(GET /cycles/5f0c1e0b2f7a4a0e9d3c0b8f4c1d2e3a) or for its lock to expire",
                   "id": "5f0c1e0b2f7a4a0e9d3c0b8f4c1d2e3a"}},
)


@router.post("", status_code=status.HTTP_202_ACCEPTED, response_model=CycleStarted, responses=_START_ERRORS)
async def start_cycle(_role: OperatorAuth, body: CycleRequest | None = None) -> Any:
    """Force a model cycle now; 409 with the running cycle's id when one is running."""
    options = {k: v for k, v in (body.model_dump() if body else {}).items() if v is not None}
    try:
        cycle = await run_in_threadpool(cycles.start_cycle, "operator", options)
    except cycles.CycleRunning as exc:
        return JSONResponse({"detail": exc.message, "id": exc.running_id}, status_code=409)
    return CycleStarted(id=cycle.id)


@router.get("", response_model=list[CycleView], responses=errors(401, 422))
async def list_cycles(_role: PredictAuth, limit: int = Query(20, ge=1, le=200)) -> Any:
    """The newest cycles first."""
    found = await run_in_threadpool(cycles.list_cycles, limit)
    return [cycles.cycle_view(c) for c in found]


_CYCLE_ID = Path(pattern=CYCLE_ID_PATTERN, max_length=64, examples=["5f0c1e0b2f7a4a0e9d3c0b8f4c1d2e3a"])


@router.get(
    "/{cycle_id}",
    response_model=CycleView,
    responses=errors(
        401, 404, 422,
        not_found="no such cycle",
        example={404: {"detail": "no cycle '0123abcd'; GET /cycles (or `mlpipe cycle --list`) lists them"}},
    ),
)
async def get_cycle(_role: PredictAuth, cycle_id: str = _CYCLE_ID) -> Any:
    """One cycle: stage, per-model progress, results, timings and errors."""
    return cycles.cycle_view(await run_in_threadpool(cycles.get_cycle, cycle_id))
