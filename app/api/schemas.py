"""Request and answer bodies of the prediction, model and ensemble endpoints (with OpenAPI examples)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal, get_args

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, FiniteFloat, model_validator

SYMBOL_PATTERN = r"^[A-Z0-9]{1,15}-[A-Z0-9]{1,15}$"
# What the service can name (models: family_NNN, model_NNN or a kind; ensembles: id or ensemble_NNN;
# cycles: a hex id), checked at the door so odd characters never reach a database query.
MODEL_REF_PATTERN = r"^[a-z][a-z0-9_]{0,127}$"
ENSEMBLE_REF_PATTERN = r"^([0-9]{1,9}|ensemble_[0-9]{3,9})$"
CYCLE_ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
FEATURE_NAME_PATTERN = r"^[a-z][a-z0-9_]{0,63}$"
TEXT_PATTERN = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*$"  # printable: no NUL or control characters
# The pattern in a 422 is exact but cryptic; the answer adds what it means.
PATTERN_HINTS = {
    SYMBOL_PATTERN: "a market as BASE-QUOTE in capitals and digits, e.g. BTC-USDT",
    MODEL_REF_PATTERN: "a model name (lowercase letters, digits, '_'; e.g. direction_xgb_003) or a kind",
    ENSEMBLE_REF_PATTERN: "an ensemble id (1) or name (ensemble_001)",
    CYCLE_ID_PATTERN: "a cycle id as POST /cycles returned it (letters, digits, '-', '_')",
    FEATURE_NAME_PATTERN: "a feature name (lowercase letters, digits, '_'; e.g. rsi_14)",
    TEXT_PATTERN: "printable text without NUL or control characters",
}
MAX_CANDLES = 5000
MAX_SYMBOLS = 100  # symbols in one POST /predict/{model} (documented in the README)
MAX_PRICE = 1e12  # far above any quoted price, far below where rolling variances overflow
MAX_VOLUME = 1e18
MAX_FEATURE = 1e15
Kind = Literal["direction", "risk", "price", "momentum", "volatility"]
KIND_NAMES = get_args(Kind)
Status = Literal["candidate", "active", "archived", "superseded", "failed"]
Symbol = Annotated[str, Field(pattern=SYMBOL_PATTERN, examples=["BTC-USDT"])]
ModelRef = Annotated[str, Field(pattern=MODEL_REF_PATTERN, max_length=128, examples=["direction_xgb_001"])]
FeatureName = Annotated[str, Field(pattern=FEATURE_NAME_PATTERN, max_length=64)]
FeatureValue = Annotated[FiniteFloat, Field(ge=-MAX_FEATURE, le=MAX_FEATURE)]
Price = Annotated[FiniteFloat, Field(gt=0, le=MAX_PRICE)]


class CandleIn(BaseModel):
    """One raw OHLCV candle; `ts` is its open time in UTC milliseconds."""

    model_config = ConfigDict(extra="forbid")

    ts: int = Field(ge=0, le=10**14, examples=[1767225600000])
    open: Price
    high: Price
    low: Price
    close: Price
    volume: FiniteFloat = Field(ge=0, le=MAX_VOLUME)


class PredictRequest(BaseModel):
    """`symbol` alone uses the latest stored candles; or send `candles` (at the model's timeframe, oldest
    first, enough for the features' warm-up) or `features` (one value per feature the model uses); or
    `symbols` (up to 100, stored candles) for one answer per symbol, in order."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"symbol": "BTC-USDT"},
                {"symbol": "BTC-USDT", "features": {"returns": 0.0004, "rsi_14": 61.2}},
                {"symbols": ["BTC-USDT", "ETH-USDT"]},
            ]
        },
    )

    symbol: Symbol | None = Field(default=None, description="market, BASE-QUOTE")
    symbols: list[Symbol] | None = Field(
        default=None, min_length=1, max_length=MAX_SYMBOLS,
        description=f"many markets (at most {MAX_SYMBOLS}), each answered from its latest stored candles",
    )
    candles: list[CandleIn] | None = Field(default=None, min_length=1, max_length=MAX_CANDLES)
    features: dict[FeatureName, FeatureValue] | None = Field(default=None, max_length=500)
    as_of: int | None = Field(
        default=None, ge=0, le=10**14,
        description="with `features`: the candle open time (ms) they belong to, so the answer can be scored",
    )

    @model_validator(mode="after")
    def _one_input(self) -> PredictRequest:
        if self.candles is not None and self.features is not None:
            raise ValueError("candles: send either `candles` or `features`, not both")
        if (self.symbol is None) == (self.symbols is None):
            raise ValueError("symbol: send `symbol` (one market) or `symbols` (a list), exactly one of them")
        if self.symbols is not None and (self.candles is not None or self.features is not None):
            raise ValueError("symbols: many symbols are answered from stored candles; send `candles` or "
                             "`features` with one `symbol`")
        return self


_PREDICTION_EXAMPLE = {
    "direction": "UP", "confidence": 0.57, "model": "direction_xgb_003", "kind": "direction",
    "version": 3, "symbol": "BTC-USDT", "as_of": "2026-01-01T12:34:00Z", "data_source": "simulated",
    "input_source": "stored_candles", "out_of_distribution": False, "dissimilarity_index": 0.41,
    "skill": 0.012, "skill_interval": [-0.004, 0.027], "beats_baseline": False,
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
    skill: float | None = Field(default=None, description="the model's holdout skill over its strongest "
                                "naive baseline (DESIGN 5)")
    skill_interval: list[float] | None = Field(default=None, description="95% block-bootstrap interval")
    beats_baseline: bool | None = Field(default=None, description="the interval's lower end is above 0")


PREDICTION_FIELDS = frozenset(Prediction.model_fields)  # what a written answer keeps (fast_json.only)


class SymbolError(BaseModel):
    """One symbol of a batch that could not be answered: the status and reason a single call would give."""

    symbol: str
    status: int = Field(examples=[404])
    error: str = Field(examples=["symbol: no candles stored for 'NOPE-USDT'"])


class BatchPrediction(BaseModel):
    """One entry per symbol asked for, in order: an answer, or that symbol's error."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "model": "direction_xgb_003", "kind": "direction", "version": 3,
        "predictions": [_PREDICTION_EXAMPLE, {"symbol": "NOPE-USDT", "status": 404,
                                              "error": "symbol: no candles stored for 'NOPE-USDT'"}],
    }]})

    model: str
    kind: Kind
    version: int
    predictions: list[Prediction | SymbolError]


_MEMBER_EXAMPLE = {k: v for k, v in _PREDICTION_EXAMPLE.items() if k != "symbol"} | {"symbol": "BTC-USDT"}


class EnsemblePrediction(BaseModel):
    """The blended answer and each member's."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "direction": "UP", "confidence": 0.55, "ensemble": "ensemble_001", "ensemble_id": 1,
        "kind": "direction", "method": "weighted_avg", "symbol": "BTC-USDT", "as_of": "2026-01-01T12:34:00Z",
        "members": [
            _MEMBER_EXAMPLE,
            {**_MEMBER_EXAMPLE, "model": "direction_rf_002", "version": 2, "confidence": 0.52},
        ],
    }]})

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
            "skill": 0.041, "skill_interval": [0.012, 0.069], "beats_baseline": True,
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
    skill: float | None = Field(default=None, description="holdout skill over the strongest naive baseline")
    skill_interval: list[float] | None = Field(default=None, description="95% block-bootstrap interval")
    beats_baseline: bool | None = Field(default=None, description="the interval's lower end is above 0")


class StatusChange(BaseModel):
    """Activate or archive a model by hand (cycles make the other transitions)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"status": "archived",
                                                                              "reason": "bad live run"}]})

    status: Literal["active", "archived"]
    reason: str = Field(default="changed by an operator", max_length=500, pattern=TEXT_PATTERN)


class EnsembleCreate(BaseModel):
    """`models` (the seed's word; `members` is accepted too) are model names of one kind (and one
    horizon); weights default to equal. What GET /ensembles/{id} returns is what this takes."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"models": ["direction_xgb_001", "direction_xgb_002"],
                                         "method": "weighted_avg", "weights": [0.6, 0.4]}]},
    )

    models: list[ModelRef] = Field(min_length=2, max_length=10,
                                   validation_alias=AliasChoices("models", "members"))
    method: Literal["weighted_avg", "voting", "stacking"] = "weighted_avg"
    weights: list[Annotated[FiniteFloat, Field(ge=0, le=1e6)]] | None = Field(
        default=None, min_length=2, max_length=10
    )
    name: str | None = Field(default=None, pattern=r"^ensemble_[0-9]{3,9}$")
    description: str = Field(default="", max_length=500, pattern=TEXT_PATTERN)

    @property
    def members(self) -> list[str]:
        return list(self.models)

    @model_validator(mode="before")
    @classmethod
    def _names_once_and_not_kinds(cls, data: Any) -> Any:
        """Checked on the raw body, so the error names the field the client sent (`models`/`members`)."""
        if not isinstance(data, dict):
            return data
        key = "models" if "models" in data else "members"
        names = data.get(key)
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            return data  # the field's own validation says what is wrong
        if len(set(names)) != len(names):
            raise ValueError(f"{key}: each model may appear once")
        kinds = [m for m in names if m in KIND_NAMES]
        if kinds:
            raise ValueError(
                f"{key}: name models, not kinds ({', '.join(kinds)}): an ensemble keeps its members "
                f"(GET /models?kind={kinds[0]} lists them)"
            )
        return data

    @model_validator(mode="after")
    def _weights_match(self) -> EnsembleCreate:
        if self.weights is not None:
            if len(self.weights) != len(self.models):
                raise ValueError(f"weights: give one weight per member ({len(self.models)}), "
                                 f"got {len(self.weights)}")
            if sum(self.weights) <= 0:
                raise ValueError("weights: must have a positive sum")
        return self


class EnsembleOut(BaseModel):
    """An ensemble's config, status (candidate until backtested, then active or rejected) and results."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "id": 1, "name": "ensemble_001", "kind": "direction", "method": "weighted_avg",
        "models": ["direction_xgb_001", "direction_rf_002"], "weights": [0.6, 0.4], "status": "active",
        "meta": None, "results": {"ensemble": {"f1": 0.58}, "members": {"direction_xgb_001": {"f1": 0.55},
                                  "direction_rf_002": {"f1": 0.54}}, "beats_every_member": True,
                                  "eval_rows": 480, "metric": "f1"},
        "description": "", "created_ts": "2026-01-01T00:00:00Z", "backtested_ts": "2026-01-01T00:05:00Z",
    }]})

    id: int | None = Field(description="null for a config file in model_store/ensembles/ not registered yet "
                           "(its first POST registers it)")
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
    """Which candles to score on; by default the members' training symbols over the last 7 days."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"symbols": ["BTC-USDT"], "days_back": 3}]}
    )

    symbols: list[Symbol] | None = Field(default=None, min_length=1, max_length=20)
    days_back: float = Field(default=7.0, gt=0, le=90)


class FieldError(BaseModel):
    field: str = Field(description="where: a body field (`candles.3.close`), `path.<name>` or `query.<name>`")
    reason: str


class ErrorOut(BaseModel):
    """Every error answer: `detail` says what went wrong and what to do about it."""

    detail: str


class ValidationErrorOut(ErrorOut):
    """A 422 from request validation names each field and its reason."""

    errors: list[FieldError] = Field(default_factory=list)


class ConflictOut(ErrorOut):
    id: str | None = Field(default=None, description="the cycle that is running, for a 409 from POST /cycles")
