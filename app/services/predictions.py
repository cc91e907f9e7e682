"""The predict use case: which model, which inputs, the answer, and its provenance.

route -> `predict_in_memory()` (no I/O, on the event loop) or `predict()` (threads) -> `answer_for()`, the
one path every answer takes (single calls, batches, streams and ensemble members): the model from the
cache, inputs from the feature-row cache (computed once per symbol, timeframe and newest stored candle) or
the body -> `model.answer_values` -> provenance, dissimilarity index, and a log entry handed to a
background thread. Services take plain values (`PredictInput`), never the API's request models.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from app.core.config import get_settings
from app.core.errors import BadInput, MLPipeError, NotFound, Unavailable
from app.data.candles import load_candles
from app.data.frames import TIMEFRAME_MS, candles_frame, index_ms
from app.services.feature_rows import FeatureRowCache, Inputs
from app.store.cache import CachedModel, ModelCache


@dataclass(frozen=True)
class PredictInput:
    """One request's inputs: a symbol, and optionally raw candles or feature values instead of stored ones."""

    symbol: str
    candles: list[dict[str, Any]] | None = None  # raw OHLCV rows with `ts`, oldest first
    features: dict[str, float] | None = None
    as_of: int | None = None  # with `features`: the candle open time (ms) they belong to

    @property
    def given(self) -> str:
        if self.candles is not None:
            return "candles"
        return "features" if self.features is not None else "symbol"


def check_fresh(entry: CachedModel) -> None:
    """Refuse a model older than MODEL_EXPIRY_HOURS: the market it learned may be gone."""
    hours = get_settings().model_expiry_hours
    age = datetime.now(UTC) - entry.created_ts
    if hours > 0 and age > timedelta(hours=hours):
        raise Unavailable(
            f"model {entry.name} was trained {age.total_seconds() / 3600:.1f} h ago, over the "
            f"{hours:g} h expiry (MODEL_EXPIRY_HOURS); run a cycle to train a fresh one"
        )


def needed_1m_bars(entry: CachedModel) -> int:
    from app.features import required_warmup
    from app.ml.dataset import SCALE_WINDOW

    bars = max(required_warmup(list(entry.model.features), entry.timeframe), SCALE_WINDOW) + 2
    return (bars + 1) * (TIMEFRAME_MS[entry.timeframe] // TIMEFRAME_MS["1m"])


def market_for(entry: CachedModel, candles: pd.DataFrame) -> dict[str, pd.DataFrame] | None:
    """The stored candles of the market symbols a cross-asset model reads, over the span of `candles`
    (None for the other models). Missing ones are named by `latest_rows` (503), never guessed."""
    needed = list(getattr(entry.model, "market_symbols_", ()) or ())
    if not needed or candles.empty:
        return None
    from app.services.market_data import market_candles

    stamps = index_ms(candles.index)
    return market_candles(needed, entry.timeframe, int(stamps[0]), int(stamps[-1]))


def feature_row(
    entry: CachedModel, candles: pd.DataFrame, what: str
) -> tuple[np.ndarray, dict[str, float] | None, int]:
    """The model's features of the newest candle (checked finite), its close and scale, and its time.

    A cross-asset model also reads its market symbols' stored candles at the same times."""
    from app.ml.base import context_values
    from app.ml.dataset import latest_rows

    features, context = latest_rows(entry.model, candles, market_for(entry, candles))
    values = features[list(entry.features)].to_numpy(dtype="float64")[0]
    if not np.isfinite(values).all():
        bad = [c for c, v in zip(entry.features, values, strict=True) if not np.isfinite(v)]
        raise BadInput(
            f"{what}: features {bad} are undefined on the newest candle (too short or flat a "
            f"history); send more candles"
        )
    return values, context_values(context), int(index_ms(features.index)[-1])


def no_candles(symbol: str) -> NotFound:
    return NotFound(
        f"symbol: no candles stored for {symbol!r}; ingest it (`mlpipe ingest --symbols "
        f"{symbol}`) or send `candles` or `features` in the body"
    )


def stored_inputs(entry: CachedModel, symbol: str, rows: FeatureRowCache) -> Inputs:
    """Features of the newest stored candles, computed once per new candle."""
    last = rows.newest(symbol)
    if last is None:
        raise no_candles(symbol)
    key = (symbol, entry.timeframe, last, entry.features)
    hit = rows.get(key)
    if hit is not None:
        return hit
    candles = load_candles(symbol, "1m", limit=needed_1m_bars(entry))
    if entry.timeframe != "1m":
        from app.features import resample

        candles = resample(candles, entry.timeframe)
    try:
        values, context, as_of = feature_row(entry, candles, "stored candles")
    except BadInput as exc:
        raise Unavailable(f"not enough stored history for {symbol}: {exc.message}") from exc
    inputs = Inputs(values, context, as_of, "stored_candles")
    rows.put(key, inputs)
    return inputs


def body_candle_inputs(entry: CachedModel, candles: list[dict[str, Any]]) -> Inputs:
    frame = candles_frame(pd.DataFrame(candles))
    if not frame.index.is_monotonic_increasing or not frame.index.is_unique:
        raise BadInput("candles: must be sorted by ts (oldest first) without duplicates")
    bad = (frame["high"] < frame[["open", "close"]].max(axis=1)) | (
        frame["low"] > frame[["open", "close"]].min(axis=1)
    )
    if bad.any():
        raise BadInput(
            f"candles: {int(bad.sum())} candle(s) have high below max(open, close) or low above "
            f"min(open, close), first at ts={int(index_ms(frame.index[bad.to_numpy()])[0])}"
        )
    try:
        values, context, as_of = feature_row(entry, frame, "candles")
    except BadInput as exc:
        raise BadInput(
            exc.message if exc.message.startswith("candles") else f"candles: {exc.message}"
        ) from exc
    return Inputs(values, context, as_of, "candles")


def body_feature_inputs(
    entry: CachedModel, symbol: str, given: dict[str, float], as_of: int | None
) -> Inputs:
    """Caller-sent features; a kind whose answer is a price (price) takes the close from stored candles."""
    missing = [f for f in entry.features if f not in given]
    if missing:
        raise BadInput(f"features: missing {missing}; model {entry.name} needs {list(entry.features)}")
    as_of_ms = as_of if as_of is not None else int(time.time() // 60 * 60_000)
    values = np.array([float(given[f]) for f in entry.features], dtype="float64")
    context = None
    if getattr(entry.model, "needs_context", False):
        from app.ml.base import context_values
        from app.ml.context import SCALE_WINDOW, context_frame

        candles = load_candles(
            symbol,
            "1m",
            end_ts=as_of,
            limit=(SCALE_WINDOW + 2) * (TIMEFRAME_MS[entry.timeframe] // TIMEFRAME_MS["1m"]),
        )
        if entry.timeframe != "1m":
            from app.features import resample

            candles = resample(candles, entry.timeframe)
        if candles.empty:
            raise BadInput(
                f"features: a {entry.kind} answer is a price, so it needs stored candles of "
                f"{symbol} (none stored) or `candles` in the body instead of `features`"
            )
        context = context_values(context_frame(candles))
    return Inputs(values, context, as_of_ms, "features", scorable=as_of is not None)


def memory_inputs(entry: CachedModel, request: PredictInput, rows: FeatureRowCache) -> Inputs | None:
    """The inputs when they need no I/O: cached stored-candle features, or body features (not price).

    An invented symbol is refused here, without leaving the event loop."""
    if request.candles is not None:
        return None
    if request.features is not None:
        if getattr(entry.model, "needs_context", False):
            return None
        return body_feature_inputs(entry, request.symbol, request.features, request.as_of)
    known, last = rows.fresh_newest(request.symbol)
    if not known:
        if rows.surely_absent(request.symbol):
            raise no_candles(request.symbol)
        return None
    if last is None:
        raise no_candles(request.symbol)
    return rows.get((request.symbol, entry.timeframe, last, entry.features))


def inputs_for(entry: CachedModel, request: PredictInput, rows: FeatureRowCache) -> Inputs:
    """The inputs of any request (may read the database and compute features)."""
    if request.candles is not None:
        return body_candle_inputs(entry, request.candles)
    if request.features is not None:
        return body_feature_inputs(entry, request.symbol, request.features, request.as_of)
    return stored_inputs(entry, request.symbol, rows)


def answer_fields(kind: str, answer: Any) -> dict[str, Any]:
    """The model's answer as response fields (risk's bare integer becomes `{"risk": n}`)."""
    if kind == "risk" and not isinstance(answer, dict):
        return {"risk": int(answer)}
    return {k: (float(v) if isinstance(v, np.floating) else v) for k, v in dict(answer).items()}


def answer_with(entry: CachedModel, inputs: Inputs, symbol: str | None) -> dict[str, Any]:
    """One model's full answer on prepared inputs."""
    return _provenance(entry, inputs, symbol, entry.model.answer_values(inputs.values, inputs.context))


def _provenance(entry: CachedModel, inputs: Inputs, symbol: str | None, answer: Any) -> dict[str, Any]:
    di, ood = (None, None)
    if entry.dissimilarity is not None:
        di_value, flag = entry.dissimilarity.check(inputs.values)
        di, ood = (float(di_value) if np.isfinite(di_value) else None), flag
    return {
        **answer_fields(entry.kind, answer),
        "model": entry.name,
        "kind": entry.kind,
        "version": entry.version,
        "symbol": symbol,
        "as_of": datetime.fromtimestamp(inputs.as_of_ms / 1000, UTC),
        "data_source": entry.data_source,
        "input_source": inputs.source,
        "out_of_distribution": ood,
        "dissimilarity_index": di,
        **entry.evidence,
    }


_ANSWER_KEYS = ("direction", "state", "risk", "predicted_price", "predicted_volatility", "confidence")


def log_served(
    entry: CachedModel, result: dict[str, Any], inputs: Inputs, ensemble_id: int | None = None
) -> None:
    from app.services.prediction_log import get_prediction_log

    tf_ms = TIMEFRAME_MS[entry.timeframe]
    scorable = inputs.scorable
    get_prediction_log().put(
        {
            "request_id": uuid.uuid4().hex,
            "model_name": entry.name,
            "kind": entry.kind,
            "version": entry.version,
            "symbol": result.get("symbol") if scorable else None,
            "timeframe": entry.timeframe,
            "horizon": entry.horizon,
            "as_of_ts": inputs.as_of_ms,
            "due_ts": inputs.as_of_ms + (entry.horizon + 1) * tf_ms - TIMEFRAME_MS["1m"],
            "served_ts": int(time.time() * 1000),
            "data_source": entry.data_source,
            "answer": {k: result[k] for k in _ANSWER_KEYS if k in result},
            "ensemble_id": ensemble_id,
        }
    )


def answer_for(
    entry: CachedModel,
    request: PredictInput,
    rows: FeatureRowCache,
    *,
    io: bool = True,
    ensemble_id: int | None = None,
) -> dict[str, Any] | None:
    """One model's answer to one request, logged: the path every answer takes.

    With `io=False` it never reads the database and returns None when the inputs are not in memory.
    """
    check_fresh(entry)
    inputs = memory_inputs(entry, request, rows)
    if inputs is None:
        if not io:
            return None
        inputs = inputs_for(entry, request, rows)
    result = answer_with(entry, inputs, request.symbol)
    log_served(entry, result, inputs, ensemble_id)
    return result


def predict_in_memory(
    cache: ModelCache, rows: FeatureRowCache, model_or_kind: str, request: PredictInput
) -> dict[str, Any] | None:
    """The common case without I/O, cheap enough for the event loop; None when `predict` must run."""
    start = time.perf_counter()
    entry = cache.peek(model_or_kind)
    if entry is None:
        return None
    result = answer_for(entry, request, rows, io=False)
    if result is not None:
        _observe(entry, start)
    return result


def predict(
    cache: ModelCache, rows: FeatureRowCache, model_or_kind: str, request: PredictInput
) -> dict[str, Any]:
    """POST /predict/{model}: resolve, check freshness, compute inputs, answer, log."""
    start = time.perf_counter()
    entry = cache.resolve(model_or_kind)
    result = answer_for(entry, request, rows)
    assert result is not None
    _observe(entry, start)
    return result


def _observe(entry: CachedModel, start: float) -> None:
    from app.core.metrics import observe_prediction

    observe_prediction(entry.name, entry.kind, time.perf_counter() - start)


def _symbol_error(symbol: str, exc: MLPipeError) -> dict[str, Any]:
    return {"symbol": symbol, "status": exc.status_code, "error": exc.message}


def answer_many(
    entry: CachedModel, symbols: list[str], rows: FeatureRowCache, *, io: bool = True
) -> list[dict[str, Any] | None]:
    """One answer per symbol (stored candles), in order, each logged; a symbol that cannot be answered gets
    its own error (`{"symbol", "status", "error"}`) and the others still answer. With `io=False`, None
    marks a symbol whose inputs are not in memory. The model runs once for all symbols (`answer_many`)."""
    check_fresh(entry)
    found: list[Inputs | dict[str, Any] | None] = []
    for symbol in symbols:
        try:
            inputs = memory_inputs(entry, PredictInput(symbol), rows)
            if inputs is None and io:
                inputs = stored_inputs(entry, symbol, rows)
            found.append(inputs)
        except MLPipeError as exc:
            found.append(_symbol_error(symbol, exc))
    ready = [(i, inputs) for i, inputs in enumerate(found) if isinstance(inputs, Inputs)]
    results: list[dict[str, Any] | None] = [f if isinstance(f, dict) else None for f in found]
    if not ready:
        return results
    values = np.stack([inputs.values for _, inputs in ready])
    with np.errstate(all="ignore"):
        answers = entry.model.answer_many(values, [inputs.context for _, inputs in ready])
    for (i, inputs), answer in zip(ready, answers, strict=True):
        result = _provenance(entry, inputs, symbols[i], answer)
        bad = next((k for k, v in result.items() if isinstance(v, float) and not np.isfinite(v)), None)
        if bad:
            results[i] = _symbol_error(symbols[i], BadInput(f"symbol: the model's answer ({bad}) is not a "
                                                            "finite number for this symbol's candles"))
            continue
        log_served(entry, result, inputs)
        results[i] = result
    return results


def predict_many(
    cache: ModelCache, rows: FeatureRowCache, model_or_kind: str, symbols: list[str], *, io: bool = True
) -> dict[str, Any] | None:
    """POST /predict/{model} with `symbols`: the model is resolved once (its errors are the whole call's);
    with `io=False`, None when the model is not in memory."""
    start = time.perf_counter()
    entry = cache.peek(model_or_kind) if not io else cache.resolve(model_or_kind)
    if entry is None:
        return None
    results = answer_many(entry, symbols, rows, io=io)
    answered = sum(1 for r in results if r is not None and "error" not in r)
    if answered:
        from app.core.metrics import observe_prediction

        each = (time.perf_counter() - start) / answered
        for _ in range(answered):
            observe_prediction(entry.name, entry.kind, each)
    return {"model": entry.name, "kind": entry.kind, "version": entry.version, "predictions": results}
