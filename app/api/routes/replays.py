"""Replays: run the pipeline over stored history (operator), follow one, read its report."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Path, status
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field

from app.api.deps import OperatorAuth, PredictAuth
from app.api.docs import errors
from app.api.schemas import Symbol
from app.services import replay as replays

router = APIRouter(prefix="/replays", tags=["replays"])


class ReplayRequest(BaseModel):
    """The same choices as `mlpipe replay`."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"symbols": ["BTC-USDT", "ETH-USDT"], "from": "2021-04-05",
                                         "to": "2021-05-12", "every": "12h"}]},
    )

    symbols: list[Symbol] = Field(min_length=1, max_length=50)
    from_: str = Field(alias="from", max_length=40, description="first step: a date or ISO-8601 UTC time")
    to: str = Field(max_length=40, description="last step: a date or ISO-8601 UTC time")
    every: str = Field(default="12h", max_length=10, description="time between steps: 12h, 6h, 1d...")
    window_days: float | None = Field(default=None, gt=0, le=365)
    workers: int = Field(default=2, ge=1, le=16, description="worker processes the replay starts")


class ReplayStarted(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"id": "3f2a9c1b7d4e", "status": "queued"}]})

    id: str
    status: str = "queued"


_VIEW_EXAMPLE = {
    "state": "finished", "replay_id": "3f2a9c1b7d4e",
    "spec": {"symbols": ["BTC-USDT"], "from_ms": 1617580800000, "to_ms": 1617624000000, "every_hours": 12},
    "steps": [{"step_ms": 1617580800000, "status": "succeeded", "champions": {"direction": "dir_001"}}],
    "kinds": {"direction": {"policies": {"served": {"skill": 0.01, "interval": [-0.02, 0.04],
                                                    "beats_baseline": False, "n": 1440}}}},
    "decisions": {"direction": {"switches": 0, "drift_flags": 0, "retrains": 0}},
    "plots": ["cumulative_skill.png"],
}


class ReplayView(BaseModel):
    model_config = ConfigDict(extra="allow", json_schema_extra={"examples": [_VIEW_EXAMPLE]})

    state: str = Field(description="queued | running | finished | failed")
    replay_id: str
    spec: dict[str, Any]
    steps: list[dict[str, Any]] = Field(description="what each step's cycle decided")
    kinds: dict[str, Any] | None = Field(default=None, description="per kind and policy, when finished")
    decisions: dict[str, Any] | None = None
    plots: list[str] | None = Field(default=None, description="PNG files in the replay's directory")


_ID = Path(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$", examples=["3f2a9c1b7d4e"])


@router.post("", status_code=status.HTTP_202_ACCEPTED, response_model=ReplayStarted,
             responses=errors(401, 403, 422, invalid="bad dates, step or models config"))
async def start_replay(_role: OperatorAuth, body: ReplayRequest) -> Any:
    """Queue a replay (one RQ job; it starts its own workers for its cycles); follow it with GET."""
    spec = {"symbols": body.symbols, "from_ms": replays.parse_when(body.from_),
            "to_ms": replays.parse_when(body.to), "every_hours": replays.parse_every(body.every),
            "workers": body.workers}
    if body.window_days is not None:
        spec["window_days"] = body.window_days
    replay_id = await run_in_threadpool(replays.submit_replay, spec)
    return ReplayStarted(id=replay_id)


@router.get("/{replay_id}", response_model=ReplayView,
            responses=errors(401, 404, 422, not_found="no such replay"))
async def get_replay(_role: PredictAuth, replay_id: str = _ID) -> Any:
    """`state` (queued, running, finished, failed), the steps done, and when finished the report:
    per kind and policy the served skill with its interval beside the baselines, decisions, plots."""
    return await run_in_threadpool(replays.load_report, replay_id)
