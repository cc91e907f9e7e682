"""Tuning studies (DESIGN 10): start one (operator), list them, follow one's trials and result; and the
definitions tuning adopted (stored in the database; config/models.yaml is never rewritten)."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Path, Query, status
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field

from app.api.deps import OperatorAuth, PredictAuth
from app.api.docs import errors
from app.services import definition_versions
from app.services.tuning import studies, views

router = APIRouter(tags=["tuning"])


class TuningRequest(BaseModel):
    """Which definition to tune and the budget; `search_space` replaces the file's space for this study."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"definition": "direction_predictor", "trials": 50, "minutes": 10}]},
    )

    definition: str = Field(min_length=1, max_length=120, pattern=r"^[A-Za-z0-9_.-]+$",
                            description="a definition name of config/models.yaml")
    trials: int | None = Field(default=None, ge=1, le=10_000, description="default: TUNING_TRIALS (50)")
    minutes: float | None = Field(default=None, gt=0, le=1440, description="default: TUNING_MINUTES (10)")
    search_space: dict[str, Any] | None = Field(
        default=None, description="{params: {name: {low, high, step, log} or {choices}}, features, ...}"
    )


class TuningStarted(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"id": "st_0123456789ab", "status": "queued"}]})

    id: str
    status: Literal["queued"] = "queued"


_STUDY_EXAMPLE = {
    "id": "st_0123456789ab", "definition": "direction_predictor", "kind": "direction", "status": "running",
    "trigger": "api", "budget": {"trials": 50, "seconds": 600.0}, "trials_done": 2,
    "objective": "mean walk-forward skill (train part only)", "best_value": 0.012,
    "best_so_far": [0.01, 0.012],
    "trials": [{"number": 0, "state": "complete", "value": 0.01, "current": True, "params": {"max_depth": 6}},
               {"number": 1, "state": "complete", "value": 0.012, "current": False,
                "params": {"max_depth": 4}}],
    "adopted": None, "result": None,
}


class StudyView(BaseModel):
    model_config = ConfigDict(extra="allow", json_schema_extra={"examples": [_STUDY_EXAMPLE]})

    id: str
    definition: str
    kind: str
    status: str = Field(description="queued | running | finishing | finished | failed")
    trigger: str = Field(description="cycle | cli | api")
    budget: dict[str, Any]
    trials_done: int
    trials: list[dict[str, Any]] = Field(description="number, state, value, params, times")
    best_so_far: list[float | None]
    best_value: float | None
    adopted: dict[str, Any] | None = Field(default=None,
                                           description="decision, version, reason, old/new skill, p-value")
    result: dict[str, Any] | None = Field(default=None,
                                          description="the holdout comparison and the paired test")


@router.post("/tuning", status_code=status.HTTP_202_ACCEPTED, response_model=TuningStarted,
             responses=errors(401, 403, 404, 422, 503, not_found="no such definition",
                              invalid="invalid body or search space (the field and reason)"))
async def start_tuning(_role: OperatorAuth, body: TuningRequest) -> Any:
    """Start a tuning study of one definition (202 + id); its trials run on the workers."""
    study = await run_in_threadpool(
        studies.start_study, body.definition, trials=body.trials, minutes=body.minutes, trigger="api",
        search_space=body.search_space,
    )
    return TuningStarted(id=study.id)


@router.get("/tuning", response_model=list[StudyView], responses=errors(401, 422))
async def list_tuning(_role: PredictAuth, limit: int = Query(20, ge=1, le=200)) -> Any:
    """The newest studies first."""
    return await run_in_threadpool(views.list_study_views, limit)


@router.get("/tuning/{study_id}", response_model=StudyView,
            responses=errors(401, 404, 422, not_found="no such study"))
async def get_tuning(
    _role: PredictAuth, study_id: str = Path(pattern=r"^st_[0-9a-f]{12}$", examples=["st_0123456789ab"])
) -> Any:
    """One study: its trials, the best so far, its state and (once finished) its result."""
    return await run_in_threadpool(views.get_study_view, study_id)


class DefinitionVersionView(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "name": "direction_predictor", "version": 2, "study_id": "st_0123456789ab",
        "definition": {"type": "xgboost", "name": "direction_predictor", "config": {"max_depth": 4},
                       "features": ["returns", "rsi_14"], "horizon": 1, "timeframe": "1m"},
        "reason": "the best of 50 trials beats the current definition on 4032 holdout rows (p = 0.012)",
        "numbers": {"trials": 50, "p_value": 0.012}, "created_ts": "2026-12-01T12:00:00+00:00"}]})

    name: str
    version: int = Field(description="1 is config/models.yaml's own; each adoption adds one")
    study_id: str | None
    definition: dict[str, Any]
    reason: str
    numbers: dict[str, Any]
    created_ts: str


@router.get("/definitions", response_model=list[DefinitionVersionView], responses=errors(401, 422))
async def list_definitions(_role: PredictAuth, name: str | None = Query(None, max_length=120)) -> Any:
    """Definition versions adopted by tuning studies (version 1 of each is config/models.yaml's)."""
    found = await run_in_threadpool(definition_versions.list_versions, name)
    return [definition_versions.as_dict(v) for v in found]
