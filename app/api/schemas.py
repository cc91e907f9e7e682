"""Request and answer bodies of the prediction, model and ensemble endpoints (with OpenAPI examples)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, FiniteFloat, model_validator

SYMBOL_PATTERN = r"^[A-Z0-9]{1,15}-[A-Z0-9]{1,15}$"
MAX_CANDLES = 5000
Kind = Literal["direction", "risk", "price", "momentum", "volatility"]
Status = Literal["candidate", "active", "archived", "superseded", "failed"]


class CandleIn(BaseModel):
    """One raw OHLCV candle; `ts` is its open time in UTC milliseconds."""

    model_config = ConfigDict(extra="forbid")

    ts: int = Field(ge=0, le=10**14, examples=[1767225600000])
    open: FiniteFloat = Field(gt=0)
    high: FiniteFloat = Field(gt=0)
    low: FiniteFloat = Field(gt=0)
    close: FiniteFloat = Field(gt=0)
    volume: FiniteFloat = Field(ge=0)


class PredictRequest(BaseModel):
    """`symbol` alone uses the latest stored candles; or send `candles` (at the model's timeframe, oldest
    first, enough for the features' warm-up) or `features` (one value per feature the model uses)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"symbol": "BTC-USDT"},
                {"symbol": "BTC-USDT", "features": {"returns": 0.0004, "rsi_14": 61.2}},
            ]
        },
    )

    symbol: str = Field(pattern=SYMBOL_PATTERN, description="market, BASE-QUOTE", examples=["BTC-USDT"])
    candles: list[CandleIn] | None = Field(default=None, min_length=1, max_length=MAX_CANDLES)
    features: dict[str, FiniteFloat] | None = Field(default=None, max_length=500)
    as_of: int | None = Field(
        default=None, ge=0, le=10**14,
        description="with `features`: the candle open time (ms) they belong to, so the answer can be scored",
    )

    @model_validator(mode="after")
    def _one_input(self) -> PredictRequest:
        if self.candles is not None and self.features is not None:
            raise ValueError("send either `candles` or `features`, not both")
        return self


_PREDICTION_EXAMPLE = {
    "direction": "UP", "confidence": 0.57, "model": "direction_xgb_003", "kind": "direction",
    "version": 3, "symbol": "BTC-USDT", "as_of": "2026-01-01T12:34:00Z", "data_source": "simulated",
    "input_source": "stored_candles", "out_of_distribution": False, "dissimilarity_index": 0.41,
}


class Prediction(BaseModel):
    """The kind's answer (DESIGN 4) plus who answered and on what."""

    model_config = ConfigDict(json_schema_extra={"examples": [_PREDICTION_EXAMPLE]})

    direction: Literal["UP", "DOWN"] | None = None
    state: Literal["accelerating", "decelerating"] | None = None
    risk: int | None = Field(default=None, ge=0, le=100)
    predicted_price: float | None = None
    predicted_volatility: float | None = None
    confidence: float | None = Field(default=None, description="documented per kind (DESIGN 4)")
    model: str
    kind: Kind
    version: int
    symbol: str | None = None
    as_of: datetime = Field(description="open time of the candle the features belong to (UTC)")
    data_source: str = Field(description="the data source the model was trained on")
    input_source: Literal["stored_candles", "candles", "features"]
    out_of_distribution: bool | None = Field(
        default=None, description="the input is further from the training data than 99% of training rows"
    )
    dissimilarity_index: float | None = Field(default=None, description="FreqAI-style DI; null if unknown")


class EnsemblePrediction(BaseModel):
    """The blended answer and each member's."""

    direction: Literal["UP", "DOWN"] | None = None
    state: Literal["accelerating", "decelerating"] | None = None
    risk: int | None = Field(default=None, ge=0, le=100)
    predicted_price: float | None = None
    predicted_volatility: float | None = None
    confidence: float | None = None
    ensemble: str
    ensemble_id: int
    kind: Kind
    method: str
    symbol: str | None = None
    as_of: datetime
    members: list[Prediction]


class ModelOut(BaseModel):
    """A model's metadata (DESIGN 7)."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{
            "name": "direction_xgb_001", "type": "xgboost", "kind": "direction", "version": 1,
            "status": "active", "features": ["returns", "rsi_14"], "feature_count": 2,
            "hyperparams": {"n_estimators": 100}, "training": {"symbols": ["BTC-USDT"]},
            "performance": {"backtest_f1": 0.56}, "live_performance": {"accuracy": 0.54,
            "trades_evaluated": 145, "last_updated": "2026-01-01T12:00:00+00:00"}, "score": 4.1,
            "data_source": "simulated", "description": "", "created_ts": "2026-01-01T00:00:00Z",
        }]}
    )

    name: str
    type: str
    kind: str
    version: int
    status: str
    features: list[str]
    feature_count: int
    hyperparams: dict[str, Any]
    training: dict[str, Any]
    performance: dict[str, Any]
    live_performance: dict[str, Any]
    score: float | None
    data_source: str
    description: str
    created_ts: datetime
    champion: bool = Field(default=False, description="serves /predict/{kind} in this API process")


class StatusChange(BaseModel):
    """Activate or archive a model by hand (cycles make the other transitions)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"status": "archived",
                                                                              "reason": "bad live run"}]})

    status: Literal["active", "archived"]
    reason: str = Field(default="changed by an operator", max_length=500)


class EnsembleCreate(BaseModel):
    """Members are model names of one kind (and one horizon); weights default to equal."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"members": ["direction_xgb_001", "direction_xgb_002"],
                                         "method": "weighted_avg", "weights": [0.6, 0.4]}]},
    )

    members: list[str] = Field(min_length=2, max_length=10)
    method: Literal["weighted_avg", "voting", "stacking"] = "weighted_avg"
    weights: list[FiniteFloat] | None = Field(default=None, min_length=2, max_length=10)
    name: str | None = Field(default=None, pattern=r"^ensemble_\d{3,}$")
    description: str = Field(default="", max_length=500)

    @model_validator(mode="after")
    def _weights_match(self) -> EnsembleCreate:
        if self.weights is not None:
            if len(self.weights) != len(self.members):
                raise ValueError(f"weights: give one weight per member ({len(self.members)}), "
                                 f"got {len(self.weights)}")
            if any(w < 0 for w in self.weights) or sum(self.weights) <= 0:
                raise ValueError("weights: must be non-negative with a positive sum")
        if len(set(self.members)) != len(self.members):
            raise ValueError("members: each model may appear once")
        return self


class EnsembleOut(BaseModel):
    id: int
    name: str
    kind: str
    method: str
    models: list[str]
    weights: list[float]
    status: str
    meta: dict[str, Any] | None = None
    results: dict[str, Any] | None = None
    description: str
    created_ts: datetime
    backtested_ts: datetime | None = None


class BacktestRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    symbols: list[str] | None = Field(default=None, max_length=20)
    days_back: float = Field(default=7.0, gt=0, le=90)
