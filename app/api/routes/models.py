"""Model metadata and manual status changes."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Path, Query

from app.api.deps import CacheDep, OperatorAuth, PredictAuth
from app.api.docs import errors
from app.api.schemas import MODEL_REF_PATTERN, ModelOut, StatusChange
from app.store.cache import ModelCache

router = APIRouter(prefix="/models", tags=["models"])

_Kind = Literal["direction", "risk", "price", "momentum", "volatility"]
_Status = Literal["candidate", "active", "archived", "superseded", "failed"]
_NAME = Path(max_length=128, pattern=MODEL_REF_PATTERN, examples=["direction_xgb_001"],
             description="the model's name")


def model_out(record, cache: ModelCache) -> ModelOut:  # noqa: ANN001 - a ModelRecord
    champions = cache.snapshot.champions
    return ModelOut(
        name=record.name,
        type=record.model_type,
        kind=record.kind,
        version=record.version,
        status=record.status,
        features=list(record.features),
        feature_count=len(record.features),
        hyperparams=record.hyperparams,
        training=record.training,
        performance=record.performance,
        live_performance=record.live_performance,
        score=record.score,
        data_source=record.data_source,
        description=record.description,
        created_ts=record.created_ts,
        champion=champions.get(record.kind) == record.name,
        skill=(record.performance or {}).get("skill"),
        skill_interval=(record.performance or {}).get("skill_interval"),
        beats_baseline=(record.performance or {}).get("beats_baseline"),
    )


@router.get("", response_model=list[ModelOut], responses=errors(401, 422))
def list_models(
    _role: PredictAuth,
    cache: CacheDep,
    status: _Status | None = Query(default=None), kind: _Kind | None = Query(default=None)
) -> list[ModelOut]:
    """Models, newest first; filter by status and/or kind."""
    from app.services import models

    return [model_out(r, cache) for r in models.list_models(status=status, kind=kind)]


@router.get("/{name}", response_model=ModelOut, responses=errors(401, 404, 422, not_found="unknown model"))
def get_model(_role: PredictAuth, cache: CacheDep, name: str = _NAME) -> ModelOut:
    """One model's metadata, live performance included."""
    from app.services import models

    return model_out(models.get_model(name), cache)


@router.patch(
    "/{name}",
    response_model=ModelOut,
    responses=errors(
        401, 403, 404, 409, 422,
        not_found="unknown model",
        conflict="transition not allowed (e.g. a failed model cannot be activated)",
    ),
)
def change_status(
    change: StatusChange, _role: OperatorAuth, cache: CacheDep, name: str = _NAME
) -> ModelOut:
    """Activate or archive a model; every API process reloads its champions within seconds."""
    from app.services import models

    record = models.set_status(name, change.status, change.reason)
    cache.reload("status_change")
    return model_out(record, cache)
