"""GET /stream/predictions: each new answer pushed as Server-Sent Events when a candle closes."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Header, Query, Request
from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.concurrency import run_in_threadpool

from app.api.deps import CacheDep, FeatureRowsDep, PredictAuth
from app.api.docs import errors
from app.api.fast_json import dumps, only
from app.api.schemas import MAX_SYMBOLS, MODEL_REF_PATTERN, PREDICTION_FIELDS, SYMBOL_PATTERN
from app.core.errors import BadInput
from app.services import streaming
from app.services.feature_rows import FeatureRowCache
from app.store.cache import ModelCache

router = APIRouter(tags=["predict"])

POLL_SECONDS = 0.5  # how often the newest stored candle is looked at (the feature-row cache's TTL)
PING_SECONDS = 15
_SYMBOL = re.compile(SYMBOL_PATTERN)


_EXAMPLE = (
    'event: prediction\nid: 1767225600000:0\ndata: {"direction": "UP", "confidence": 0.57, "model": '
    '"direction_xgb_003", "kind": "direction", "version": 3, "symbol": "BTC-USDT", "as_of": '
    '"2026-01-01T00:00:00Z", "data_source": "simulated", "input_source": "stored_candles"}\n\n'
)


def _symbols(text: str) -> list[str]:
    symbols = [s.strip() for s in text.split(",") if s.strip()]
    bad = [s for s in symbols if not _SYMBOL.match(s)]
    if not symbols or bad:
        raise BadInput(f"symbols: a comma-separated list of markets as BASE-QUOTE (e.g. BTC-USDT,ETH-USDT); "
                       f"not {bad[:3] or text[:40]!r}")
    if len(symbols) > MAX_SYMBOLS or len(set(symbols)) != len(symbols):
        raise BadInput(f"symbols: at most {MAX_SYMBOLS} distinct symbols per stream")
    return symbols


@router.get(
    "/stream/predictions",
    response_class=EventSourceResponse,
    responses={**errors(401, 404, 422, 503), 200: {"content": {"text/event-stream": {"example": _EXAMPLE}},
               "description": "`event: prediction` (id `<candle ms>:<symbol index>`, data: the answer as "
                              "POST /predict gives it) and `event: error` (data: symbol, status, error)"}},
)
async def stream_predictions(
    request: Request,
    _role: PredictAuth,
    cache: CacheDep,
    rows: FeatureRowsDep,
    model: Annotated[str, Query(max_length=128, pattern=MODEL_REF_PATTERN, examples=["direction"],
                                description="a model name or a kind (its champion)")],
    symbols: Annotated[str, Query(max_length=2000, examples=["BTC-USDT,ETH-USDT"],
                                  description=f"comma-separated markets, at most {MAX_SYMBOLS}")],
    last_event_id: Annotated[str | None, Header(max_length=64)] = None,
) -> EventSourceResponse:
    """Push each symbol's new answer when a new candle closes; reconnect with `Last-Event-ID` to get every
    answer since that event (no gaps, up to a day of 1m candles). The first events answer the newest
    candles, unless resuming. Answers are logged and scored like POST /predict's."""
    cursor = streaming.Cursor.resume(_symbols(symbols), last_event_id)
    await run_in_threadpool(cache.resolve, model)  # an unknown model is a 404 before the stream opens
    return EventSourceResponse(_events(request, cache, rows, model, cursor), ping=PING_SECONDS)


def _json(event: dict[str, Any]) -> str:
    """A prediction exactly as POST /predict/{model} writes it; an error as plain JSON."""
    if event["event"] == "prediction":
        return dumps(only(event["data"], PREDICTION_FIELDS)).decode()
    return json.dumps(event["data"])


async def _events(
    request: Request, cache: ModelCache, rows: FeatureRowCache, model: str, cursor: streaming.Cursor
) -> AsyncIterator[ServerSentEvent]:
    while not await request.is_disconnected():
        try:
            due: list[dict[str, Any]] = await run_in_threadpool(streaming.step, cache, rows, model, cursor)
        except Exception as exc:  # noqa: BLE001 - the model went away or the database is down: say so, retry
            message = getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}"
            status = getattr(exc, "status_code", 503)
            data = {"symbol": None, "status": status, "error": message}
            due = [{"event": "error", "id": None, "data": data}]
        for event in due:
            yield ServerSentEvent(data=_json(event), event=event["event"], id=event["id"])
        await anyio.sleep(POLL_SECONDS)
