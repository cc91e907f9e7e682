"""Predictions: one model (by name or kind's champion) or an ensemble, from memory."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
from fastapi import APIRouter, Path
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from app.api.deps import CacheDep, FeatureRowsDep, PredictAuth, ServingDep
from app.api.docs import errors
from app.api.fast_json import json_response, only
from app.api.schemas import (
    ENSEMBLE_REF_PATTERN,
    MODEL_REF_PATTERN,
    PREDICTION_FIELDS,
    BatchPrediction,
    EnsemblePrediction,
    Prediction,
    PredictRequest,
)
from app.core.errors import BadInput
from app.services import predictions
from app.services.feature_rows import FeatureRowCache
from app.services.predictions import PredictInput
from app.store.cache import ModelCache

router = APIRouter(tags=["predict"])

_ERRORS = errors(
    401, 404, 422, 503,
    not_found="unknown model, ensemble or symbol",
    unavailable="no model of that kind yet, an expired model, or not enough stored candles",
)


def _non_finite(answer: Any, path: str = "") -> str | None:
    """The first answer field that is NaN or infinite (JSON cannot carry it), or None."""
    if isinstance(answer, float):
        return None if math.isfinite(answer) else (path or "answer")
    if isinstance(answer, dict):
        items = answer.items()
    elif isinstance(answer, list):
        items = ((str(i), v) for i, v in enumerate(answer))
    else:
        return None
    for key, value in items:
        if isinstance(value, float):  # most fields: checked here, without a call each
            if not math.isfinite(value):
                return f"{path}.{key}" if path else str(key)
        elif isinstance(value, dict | list):
            found = _non_finite(value, f"{path}.{key}" if path else str(key))
            if found:
                return found
    return None


def plain(body: PredictRequest) -> PredictInput:
    """The request as the service takes it: plain values."""
    if body.symbol is None:
        raise BadInput("symbols: this endpoint answers one `symbol` per call")
    return PredictInput(
        symbol=body.symbol,
        candles=None if body.candles is None else [c.model_dump() for c in body.candles],
        features=body.features,
        as_of=body.as_of,
    )


def guarded(compute: Callable[..., dict[str, Any] | None], request: PredictInput, *args: Any) -> Any:
    """Run a prediction without float warnings, and refuse an answer that is not a finite number.

    Extreme (but finite) inputs can overflow inside a model; that is a property of the input, so the caller
    gets a 422 naming it, never a 500 or a NaN.
    """
    with np.errstate(all="ignore"):
        result = compute(*args, request)
    bad = _non_finite(result) if result is not None else None
    if bad:
        raise BadInput(
            f"{request.given}: the model's answer ({bad}) is not a finite number for this input; its values "
            f"are far outside what the model was trained on, check them"
        )
    return result


@router.post(
    "/predict/{model}",
    response_model=Prediction | BatchPrediction,  # documents the answer; the route returns ready JSON bytes
    response_model_exclude_unset=True,
    responses=_ERRORS,
)  # type: ignore[arg-type]
async def predict(
    body: PredictRequest,
    serving: ServingDep,
    model: str = Path(
        description="a model name (direction_xgb_003) or a kind (direction) for its champion",
        max_length=128,
        pattern=MODEL_REF_PATTERN,
        examples=["direction"],
    ),
) -> Response:
    """Answer from a model in memory; features from the latest stored candles unless the body has them.

    With `symbols` (at most 100): one answer per symbol, in order, and an error per symbol (404 no
    candles, 503 not enough history) instead of one for the whole call.
    """
    cache, rows = serving.cache, serving.rows
    if body.symbols is not None:
        many = await _many(cache, rows, model, body.symbols)
        many["predictions"] = [p if "error" in p else only(p, PREDICTION_FIELDS) for p in many["predictions"]]
        return json_response(many)
    # Answers whose inputs are already in memory (a fraction of a millisecond) run on the event loop;
    # anything that reads the database or computes features goes to the threadpool.
    request = plain(body)
    result = guarded(predictions.predict_in_memory, request, cache, rows, model)
    if result is None:
        result = await run_in_threadpool(guarded, predictions.predict, request, cache, rows, model)
    return json_response(only(result, PREDICTION_FIELDS))


async def _many(cache: ModelCache, rows: FeatureRowCache, model: str, symbols: list[str]) -> dict[str, Any]:
    """The symbols whose features are in memory answer on the event loop; the others in one thread."""
    with np.errstate(all="ignore"):
        result = predictions.predict_many(cache, rows, model, symbols, io=False)
    if result is None:
        return await run_in_threadpool(predictions.predict_many, cache, rows, model, symbols)
    missing = [i for i, p in enumerate(result["predictions"]) if p is None]
    if missing:
        asked = [symbols[i] for i in missing]
        rest = await run_in_threadpool(predictions.predict_many, cache, rows, model, asked)
        assert rest is not None
        for i, answer in zip(missing, rest["predictions"], strict=True):
            result["predictions"][i] = answer
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
    cache: CacheDep,
    rows: FeatureRowsDep,
    ensemble_id: str = Path(
        description="the ensemble's id (1) or name (ensemble_001)",
        max_length=64,
        pattern=ENSEMBLE_REF_PATTERN,
        examples=["1"],
    ),
) -> dict:
    """The ensemble's blended answer and each member's answer."""
    from app.services import ensembles

    return guarded(ensembles.predict, plain(body), cache, rows, ensemble_id)
