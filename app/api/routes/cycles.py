"""Model cycles: force one (operator), list them, follow one's stage and per-model progress."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Query, status
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from app.api.deps import OperatorAuth, PredictAuth
from app.services import cycles

router = APIRouter(prefix="/cycles", tags=["cycles"])


class CycleRequest(BaseModel):
    window_days: float | None = Field(default=None, gt=0, le=365, description="rolling window (default 7)")
    symbols: list[str] | None = Field(default=None, description="default: the SYMBOLS setting")


class CycleStarted(BaseModel):
    id: str = Field(examples=["5f0c1e0b2f7a4a0e9d3c0b8f4c1d2e3a"])
    status: Literal["queued"] = "queued"


class CycleView(BaseModel):
    id: str
    status: str = Field(description="queued | running | succeeded | partial | failed | interrupted")
    trigger: str
    stage: str = Field(description="queued | ingest | build | rank | drift | retrain | finish | done")
    progress: dict[str, Any] = Field(description="per model definition (and retrain): state, model, score")
    results: dict[str, Any] = Field(description="window, ranking decisions, drift report, retrains")
    timings: dict[str, Any] = Field(description="seconds per stage and per job, total")
    errors: list[dict[str, Any]]
    created_ts: str | None
    started_ts: str | None
    finished_ts: str | None


_CONFLICT = {
    409: {"description": "a cycle is already running", "content": {"application/json": {"example": {
        "detail": "cycle 5f0c... is still running; wait for it", "id": "5f0c1e0b2f7a"}}}}
}


@router.post("", status_code=status.HTTP_202_ACCEPTED, response_model=CycleStarted, responses=_CONFLICT)
async def start_cycle(_role: OperatorAuth, body: CycleRequest | None = None) -> Any:
    """Force a model cycle now; 409 with the running cycle's id when one is running."""
    options = {k: v for k, v in (body.model_dump() if body else {}).items() if v is not None}
    try:
        cycle = await run_in_threadpool(cycles.start_cycle, "operator", options)
    except cycles.CycleRunning as exc:
        return JSONResponse({"detail": exc.message, "id": exc.running_id}, status_code=409)
    return CycleStarted(id=cycle.id)


@router.get("", response_model=list[CycleView])
async def list_cycles(_role: PredictAuth, limit: int = Query(20, ge=1, le=200)) -> Any:
    """The newest cycles first."""
    found = await run_in_threadpool(cycles.list_cycles, limit)
    return [cycles.cycle_view(c) for c in found]


@router.get("/{cycle_id}", response_model=CycleView, responses={404: {"description": "no such cycle"}})
async def get_cycle(cycle_id: str, _role: PredictAuth) -> Any:
    """One cycle: stage, per-model progress, results, timings and errors."""
    return cycles.cycle_view(await run_in_threadpool(cycles.get_cycle, cycle_id))
