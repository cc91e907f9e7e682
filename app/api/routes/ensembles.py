"""Ensembles: create, read, and backtest against their members."""

from __future__ import annotations

from fastapi import APIRouter, Path

from app.api.deps import OperatorAuth, PredictAuth
from app.api.docs import errors
from app.api.schemas import ENSEMBLE_REF_PATTERN, BacktestRequest, EnsembleCreate, EnsembleOut
from app.services import ensembles

router = APIRouter(prefix="/ensembles", tags=["ensembles"])
_ID = Path(
    description="the ensemble's id (1) or name (ensemble_001)",
    max_length=64,
    pattern=ENSEMBLE_REF_PATTERN,
    examples=["1"],
)


@router.post(
    "",
    response_model=EnsembleOut,
    status_code=201,
    responses=errors(
        401, 403, 404, 409, 422,
        not_found="unknown member model",
        conflict="an ensemble with that name exists",
        invalid="invalid body, or members of different kinds or horizons",
        example={409: {"detail": "an ensemble named ensemble_001 exists; leave `name` out to get the next "
                                 "number"}},
    ),
)
def create(body: EnsembleCreate, _role: OperatorAuth) -> EnsembleOut:
    """Create an ensemble of same-kind models (saved as model_store/ensembles/ensemble_NNN.json)."""
    return EnsembleOut.model_validate(ensembles.create(body), from_attributes=True)


@router.get("", response_model=list[EnsembleOut], responses=errors(401))
def list_all(_role: PredictAuth) -> list[EnsembleOut]:
    """Every ensemble, newest first (files dropped in model_store/ensembles/ are picked up)."""
    return [EnsembleOut.model_validate(r, from_attributes=True) for r in ensembles.list_ensembles()]


@router.get(
    "/{ensemble_id}",
    response_model=EnsembleOut,
    responses=errors(
        401, 404, 422,
        not_found="unknown ensemble",
        example={404: {"detail": "no ensemble 'ensemble_009'; GET /ensembles lists them"}},
    ),
)
def get_one(_role: PredictAuth, ensemble_id: str = _ID) -> EnsembleOut:
    """One ensemble with its latest backtest results."""
    return EnsembleOut.model_validate(ensembles.get_ensemble(ensemble_id), from_attributes=True)


@router.post(
    "/{ensemble_id}/backtest",
    response_model=EnsembleOut,
    responses=errors(
        401, 403, 404, 409, 422, 503,
        not_found="unknown ensemble or symbol",
        conflict="a member model has no stored files",
        unavailable="not enough candles after every member's training data",
        example={
            409: {"detail": "direction_xgb_001 has no stored files (status failed)"},
            503: {"detail": "only 12 rows after every member's training data in the last 7 days of "
                            "['BTC-USDT']; need 40: ingest newer candles"},
        },
    ),
)
def backtest(_role: OperatorAuth, body: BacktestRequest | None = None, ensemble_id: str = _ID) -> EnsembleOut:
    """Score the ensemble beside each member on the same holdout; active only if it beats them all."""
    body = body or BacktestRequest()
    record = ensembles.backtest(ensemble_id, symbols=body.symbols, days_back=body.days_back)
    return EnsembleOut.model_validate(record, from_attributes=True)
