"""Predictions: one model (by name or kind's champion) or an ensemble, from memory."""

from __future__ import annotations

from fastapi import APIRouter, Path
from starlette.concurrency import run_in_threadpool

from app.api.deps import PredictAuth
from app.api.schemas import EnsemblePrediction, Prediction, PredictRequest
from app.services import predictions
from app.store.cache import get_cache

router = APIRouter(tags=["predict"])

_ERRORS = {
    401: {"description": "missing or invalid API key"},
    404: {"description": "unknown model, ensemble or symbol"},
    422: {"description": "invalid body: the field and the reason"},
    503: {"description": "no model of that kind yet, expired model, or not enough stored candles"},
}


@router.post(
    "/predict/{model}", response_model=Prediction, response_model_exclude_unset=True, responses=_ERRORS
)  # type: ignore[arg-type]
async def predict(
    body: PredictRequest,
    _role: PredictAuth,
    model: str = Path(
        description="a model name (direction_xgb_003) or a kind (direction) for its champion",
        max_length=128,
        examples=["direction"],
    ),
) -> dict:
    """Answer from a model in memory; features from the latest stored candles unless the body has them."""
    # Answers whose inputs are already in memory (about a millisecond of CPU) run on the event loop;
    # anything that reads the database or computes features goes to the threadpool.
    cache = get_cache()
    result = predictions.predict_in_memory(cache, model, body)
    if result is None:
        result = await run_in_threadpool(predictions.predict, cache, model, body)
    return result


@router.post(
    "/ensemble/{ensemble_id}/predict",
    response_model=EnsemblePrediction,
    response_model_exclude_unset=True,
    responses=_ERRORS,
)  # type: ignore[arg-type]
def ensemble_predict(
    body: PredictRequest,
    _role: PredictAuth,
    ensemble_id: str = Path(description="the ensemble's id (1) or name (ensemble_001)", max_length=64),
) -> dict:
    """The ensemble's blended answer and each member's answer."""
    from app.services import ensembles

    return ensembles.predict(get_cache(), ensemble_id, body)
