"""The predict use case: which model, which inputs, the answer, and its provenance.

route -> `predict()` -> cache (model in memory) -> features (cached per symbol, timeframe and newest
stored candle, so repeated requests between two candles compute nothing) -> model.answer -> provenance,
dissimilarity index, and a log entry handed to a background thread.
"""

from __future__ import annotations

import concurrent.futures
import threading
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from app.core.config import get_settings
from app.core.errors import BadInput, NotFound, Unavailable
from app.data.candles import last_candle_ts, load_candles, stored_symbols
from app.data.frames import TIMEFRAME_MS, candles_frame, index_ms
from app.store.cache import CachedModel, ModelCache

_FEATURE_CACHE_SIZE = 512


@dataclass(frozen=True)
class Inputs:
    features: pd.DataFrame  # one row, the model's features in its order
    candles: pd.DataFrame | None  # the newest candles up to that row: the answer's close/volatility context
    as_of_ms: int
    source: str  # stored_candles | candles | features
    scorable: bool = True  # the candle time is known, so the outcome can be looked up later
    context: pd.DataFrame | None = None  # close and volatility of that candle, computed once per candle

    def with_context(self) -> Inputs:
        if self.candles is None or self.candles.empty:
            return self
        from app.ml.dataset import context_frame

        return replace(self, context=context_frame(self.candles).iloc[[-1]])


class _FeatureRows:
    """Latest feature rows keyed by (symbol, timeframe, newest stored 1m candle, features)."""

    def __init__(self, size: int = _FEATURE_CACHE_SIZE) -> None:
        self._rows: OrderedDict[tuple, Inputs] = OrderedDict()
        self._lock = threading.Lock()
        self._size = size

    def get(self, key: tuple) -> Inputs | None:
        return self._rows.get(key)

    def put(self, key: tuple, value: Inputs) -> None:
        with self._lock:
            self._rows[key] = value
            while len(self._rows) > self._size:
                self._rows.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._rows.clear()
            _last_ts.clear()


feature_rows = _FeatureRows()


def check_fresh(entry: CachedModel) -> None:
    """Refuse a model older than MODEL_EXPIRY_HOURS: the market it learned may be gone."""
    hours = get_settings().model_expiry_hours
    age = datetime.now(UTC) - entry.created_ts
    if hours > 0 and age > timedelta(hours=hours):
        raise Unavailable(
            f"model {entry.name} was trained {age.total_seconds() / 3600:.1f} h ago, over the "
            f"{hours:g} h expiry (MODEL_EXPIRY_HOURS); run a cycle to train a fresh one"
        )


def _needed_1m_bars(entry: CachedModel) -> int:
    from app.features import required_warmup
    from app.ml.dataset import SCALE_WINDOW

    bars = max(required_warmup(list(entry.model.features), entry.timeframe), SCALE_WINDOW) + 2
    return (bars + 1) * (TIMEFRAME_MS[entry.timeframe] // TIMEFRAME_MS["1m"])


def _rows(entry: CachedModel, candles: pd.DataFrame, what: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    from app.ml.dataset import SCALE_WINDOW, latest_rows

    features, _context = latest_rows(entry.model, candles)
    values = features[list(entry.features)].to_numpy(dtype="float64")
    if not np.isfinite(values).all():
        bad = [c for c, v in zip(entry.features, values[0], strict=True) if not np.isfinite(v)]
        raise BadInput(
            f"{what}: features {bad} are undefined on the newest candle (too short or flat a "
            f"history); send more candles"
        )
    return features[list(entry.features)], candles.iloc[-(SCALE_WINDOW + 1) :]


_LAST_TS_TTL = 0.5
_LAST_TS_SIZE = 4096  # symbols remembered: requests naming many symbols cannot grow memory
_last_ts: OrderedDict[str, tuple[float, int | None]] = OrderedDict()


_FRESH_WAIT_SECONDS = 0.25  # how long a request waits for the re-read before it uses the last known value
_STALE_OK_SECONDS = 60.0  # ... and how old that value may be (older: the request waits for the database)
_reads: dict[str, tuple[float, concurrent.futures.Future[int | None]]] = {}  # symbol -> (started, read)
_reads_lock = threading.Lock()


def _read_newest(symbol: str) -> concurrent.futures.Future[int | None]:
    """One re-read per symbol at a time, on its own daemon thread (a hung database blocks only it)."""
    with _reads_lock:
        running = _reads.get(symbol)
        if running is not None:
            return running[1]
        future: concurrent.futures.Future[int | None] = concurrent.futures.Future()
        _reads[symbol] = (time.monotonic(), future)

    def read() -> None:
        try:
            value = last_candle_ts(symbol)
            _last_ts[symbol] = (time.monotonic(), value)
            if len(_last_ts) > _LAST_TS_SIZE:
                _last_ts.popitem(last=False)
            future.set_result(value)
        except BaseException as exc:  # handed to the waiting request (a 503), or dropped if none waits
            future.set_exception(exc)
        finally:
            with _reads_lock:
                _reads.pop(symbol, None)

    threading.Thread(target=read, name="newest-candle", daemon=True).start()
    return future


_SYMBOLS_SECONDS = 1.0
_symbols: tuple[float, frozenset[str]] = (float("-inf"), frozenset())
_symbols_lock = threading.Lock()


def _may_have_candles(symbol: str) -> bool:
    """False only when no candles are stored for the symbol, per a list re-read at most once a second
    (requests naming invented symbols cost no query each; a symbol ingested a moment ago is found)."""
    global _symbols
    if symbol in _symbols[1]:
        return True
    with _symbols_lock:
        read_at, known = _symbols
        if time.monotonic() - read_at >= _SYMBOLS_SECONDS:
            known = frozenset(stored_symbols())
            _symbols = (time.monotonic(), known)
    return symbol in known


def _newest_ts(symbol: str) -> int | None:
    """The newest stored 1m candle, re-read at most every half second (candles arrive once a minute).

    While the database is slow or down, a symbol read in the last minute is answered from its last known
    candle after a quarter of a second, so predictions from cached inputs stay fast (`as_of` says which
    candle they are from); one never read waits for the database, within its timeouts.
    """
    hit = _last_ts.get(symbol)
    age = time.monotonic() - hit[0] if hit is not None else None
    if hit is not None and age < _LAST_TS_TTL:
        return hit[1]
    if hit is None and not _may_have_candles(symbol):
        return None
    future = _read_newest(symbol)
    if hit is None or age >= _STALE_OK_SECONDS:
        return future.result()
    started = _reads.get(symbol, (time.monotonic(), None))[0]
    wait = max(0.0, _FRESH_WAIT_SECONDS - (time.monotonic() - started))  # one wait per slow read, not each
    try:
        return future.result(timeout=wait)
    except Exception:  # noqa: BLE001 - slow (TimeoutError) or down: the last known candle answers
        return hit[1]


def _no_candles(symbol: str) -> NotFound:
    return NotFound(
        f"symbol: no candles stored for {symbol!r}; ingest it (`mlpipe ingest --symbols "
        f"{symbol}`) or send `candles` or `features` in the body"
    )


def stored_inputs(entry: CachedModel, symbol: str) -> Inputs:
    """Features of the newest stored candles, computed once per new candle."""
    last = _newest_ts(symbol)
    if last is None:
        raise _no_candles(symbol)
    key = (symbol, entry.timeframe, last, entry.features)
    hit = feature_rows.get(key)
    if hit is not None:
        return hit
    candles = load_candles(symbol, "1m", limit=_needed_1m_bars(entry))
    if entry.timeframe != "1m":
        from app.features import resample

        candles = resample(candles, entry.timeframe)
    try:
        features, tail = _rows(entry, candles, "stored candles")
    except BadInput as exc:
        raise Unavailable(f"not enough stored history for {symbol}: {exc.message}") from exc
    inputs = Inputs(features, tail, int(index_ms(features.index)[-1]), "stored_candles").with_context()
    feature_rows.put(key, inputs)
    return inputs


def body_candle_inputs(entry: CachedModel, candles: list[Any]) -> Inputs:
    frame = candles_frame(pd.DataFrame([c.model_dump() for c in candles]))
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
        features, tail = _rows(entry, frame, "candles")
    except BadInput as exc:
        raise BadInput(
            exc.message if exc.message.startswith("candles") else f"candles: {exc.message}"
        ) from exc
    return Inputs(features, tail, int(index_ms(features.index)[-1]), "candles").with_context()


def body_feature_inputs(
    entry: CachedModel, symbol: str, given: dict[str, float], as_of: int | None
) -> Inputs:
    """Caller-sent features; a kind whose answer is a price (price) takes the close from stored candles."""
    missing = [f for f in entry.features if f not in given]
    if missing:
        raise BadInput(f"features: missing {missing}; model {entry.name} needs {list(entry.features)}")
    as_of_ms = as_of if as_of is not None else int(time.time() // 60 * 60_000)
    index = pd.DatetimeIndex([pd.Timestamp(as_of_ms, unit="ms", tz="UTC")], name="ts").as_unit("ms")
    row = pd.DataFrame([[float(given[f]) for f in entry.features]], columns=list(entry.features), index=index)
    candles = None
    if getattr(entry.model, "needs_context", False):
        from app.ml.dataset import SCALE_WINDOW

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
    return Inputs(row, candles, as_of_ms, "features", scorable=as_of is not None).with_context()


def resolve_inputs(entry: CachedModel, body: Any) -> Inputs:
    if body.candles is not None:
        return body_candle_inputs(entry, body.candles)
    if body.features is not None:
        return body_feature_inputs(entry, body.symbol, body.features, body.as_of)
    return stored_inputs(entry, body.symbol)


def answer_fields(kind: str, answer: Any) -> dict[str, Any]:
    """The model's answer as response fields (risk's bare integer becomes `{"risk": n}`)."""
    if kind == "risk" and not isinstance(answer, dict):
        return {"risk": int(answer)}
    return {k: (float(v) if isinstance(v, np.floating) else v) for k, v in dict(answer).items()}


def answer_with(entry: CachedModel, inputs: Inputs, symbol: str | None) -> dict[str, Any]:
    """One model's full answer on prepared inputs."""
    answer_row = getattr(entry.model, "_answer_row", None)
    if answer_row is not None and (inputs.context is not None or not entry.model.needs_context):
        # the features are already checked and in order, and the context is cached per candle
        answer = answer_row(inputs.features, inputs.context)
    else:
        answer = entry.model.answer(inputs.features, inputs.candles)
    di, ood = (None, None)
    if entry.dissimilarity is not None:
        di_value, flag = entry.dissimilarity.check(inputs.features.to_numpy()[0])
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


def log_served(
    entry: CachedModel, result: dict[str, Any], inputs: Inputs, ensemble_id: int | None = None
) -> None:
    from app.services.prediction_log import get_prediction_log

    tf_ms = TIMEFRAME_MS[entry.timeframe]
    scorable = inputs.scorable
    answer = {
        k: result[k]
        for k in ("direction", "state", "risk", "predicted_price", "predicted_volatility", "confidence")
        if k in result
    }
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
            "answer": answer,
            "ensemble_id": ensemble_id,
        }
    )


def _memory_inputs(entry: CachedModel, body: Any) -> Inputs | None:
    """The inputs when they need no I/O: cached stored-candle features, or body features (not price)."""
    if body.candles is not None:
        return None
    if body.features is not None:
        if getattr(entry.model, "needs_context", False):
            return None
        return body_feature_inputs(entry, body.symbol, body.features, body.as_of)
    hit = _last_ts.get(body.symbol)
    if hit is None:
        read_at, known = _symbols
        if time.monotonic() - read_at < _SYMBOLS_SECONDS and body.symbol not in known:
            raise _no_candles(body.symbol)  # an invented symbol, refused without leaving the event loop
        return None
    if time.monotonic() - hit[0] >= _LAST_TS_TTL:
        return None
    return feature_rows.get((body.symbol, entry.timeframe, hit[1], entry.features))


def predict_in_memory(cache: ModelCache, model_or_kind: str, body: Any) -> dict[str, Any] | None:
    """The common case without I/O, cheap enough for the event loop; None when `predict` must run."""
    entry = cache.peek(model_or_kind)
    if entry is None:
        return None
    check_fresh(entry)
    inputs = _memory_inputs(entry, body)
    if inputs is None:
        return None
    return _finish(entry, inputs, body, time.perf_counter())


def predict(cache: ModelCache, model_or_kind: str, body: Any) -> dict[str, Any]:
    """POST /predict/{model}: resolve, check freshness, compute inputs, answer, log."""
    start = time.perf_counter()
    entry = cache.resolve(model_or_kind)
    check_fresh(entry)
    return _finish(entry, resolve_inputs(entry, body), body, start)


def _finish(entry: CachedModel, inputs: Inputs, body: Any, start: float) -> dict[str, Any]:
    from app.core.metrics import observe_prediction

    result = answer_with(entry, inputs, body.symbol)
    log_served(entry, result, inputs)
    observe_prediction(entry.name, entry.kind, time.perf_counter() - start)
    return result
