"""Answers pushed as candles close (GET /stream/predictions): what is new since the last event sent.

Each event is one symbol's answer on one closed candle, with the id `<candle open time ms>:<symbol index>`,
so events are ordered by candle, then by the order the symbols were asked in. A client that reconnects
with `Last-Event-ID` gets every answer after that id: candles that closed while it was away are answered
on the candles stored up to each of them (at most REPLAY_CANDLES per symbol), so there is no gap. Every
answer goes through `predictions.answer_with` and is logged, so it is scored like any other.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from app.core.errors import BadInput, MLPipeError
from app.data.candles import load_candles
from app.data.frames import TIMEFRAME_MS
from app.services import predictions
from app.services.feature_rows import FeatureRowCache, Inputs
from app.store.cache import CachedModel, ModelCache

REPLAY_CANDLES = 1440  # a day of 1m candles answered on resume; older gaps start from the newest candle


@dataclass
class Cursor:
    """Per symbol, the open time (ms) of the last candle answered (None: nothing sent yet)."""

    symbols: list[str]
    after: dict[str, int | None] = field(default_factory=dict)
    failing: dict[str, str] = field(default_factory=dict)  # symbol -> the error last sent for it

    @classmethod
    def resume(cls, symbols: list[str], last_event_id: str | None) -> Cursor:
        """The cursor after the event `last_event_id` (`<ms>:<index>`): symbols up to that index have
        that candle, the ones after it do not yet."""
        cursor = cls(symbols, {s: None for s in symbols})
        if not last_event_id:
            return cursor
        try:
            ms_text, index_text = last_event_id.split(":")
            ms, index = int(ms_text), int(index_text)
        except ValueError:
            raise BadInput(
                f"Last-Event-ID: {last_event_id[:40]!r} is not an id this stream sent (<ms>:<index>)"
            ) from None
        for i, symbol in enumerate(symbols):
            cursor.after[symbol] = ms if i <= index else ms - 1
        return cursor


def event_id(as_of_ms: int, index: int) -> str:
    return f"{as_of_ms}:{index}"


def _inputs_at(entry: CachedModel, symbol: str, ts: int) -> Inputs:
    """The inputs of the candle at `ts` from the candles stored up to it (a replayed candle)."""
    candles = load_candles(symbol, "1m", end_ts=ts, limit=predictions.needed_1m_bars(entry))
    if entry.timeframe != "1m":
        from app.features import resample

        candles = resample(candles, entry.timeframe)
    values, context, as_of = predictions.feature_row(entry, candles, "stored candles")
    return Inputs(values, context, as_of, "stored_candles")


def _missed(entry: CachedModel, symbol: str, after: int, newest: int) -> list[int]:
    """Open times of the candles after `after` up to `newest` at the model's timeframe (capped)."""
    step = TIMEFRAME_MS[entry.timeframe]
    first = max((after // step + 1) * step, newest - (REPLAY_CANDLES - 1) * step)
    last = newest // step * step
    return list(range(first, last + 1, step))


def step(
    cache: ModelCache, rows: FeatureRowCache, model_or_kind: str, cursor: Cursor
) -> list[dict[str, Any]]:
    """The events due now (answers on newly closed candles, or a symbol's new error), oldest first; moves
    the cursor past them. Reads the database: call it off the event loop."""
    entry = cache.resolve(model_or_kind)  # per step: a new champion answers the next candle
    predictions.check_fresh(entry)
    events: list[tuple[int, int, dict[str, Any]]] = []
    for index, symbol in enumerate(cursor.symbols):
        try:
            events += [(ms, index, e) for ms, e in _symbol_events(entry, rows, symbol, cursor)]
            cursor.failing.pop(symbol, None)
        except MLPipeError as exc:
            if cursor.failing.get(symbol) != exc.message:  # each new error once, not every poll
                cursor.failing[symbol] = exc.message
                events.append((-1, index, {"event": "error", "id": None, "data": {
                    "symbol": symbol, "status": exc.status_code, "error": exc.message}}))
    events.sort(key=lambda e: (e[0], e[1]))
    return [e for _, _, e in events]


def _symbol_events(
    entry: CachedModel, rows: FeatureRowCache, symbol: str, cursor: Cursor
) -> list[tuple[int, dict[str, Any]]]:
    newest = rows.newest(symbol)
    if newest is None:
        raise predictions.no_candles(symbol)
    after = cursor.after.get(symbol)
    if after is not None and newest <= after:
        return []
    index = cursor.symbols.index(symbol)
    current = predictions.stored_inputs(entry, symbol, rows)
    if after is None:
        due = [current]
    else:
        due = [current if ts >= current.as_of_ms else _inputs_at(entry, symbol, ts)
               for ts in _missed(entry, symbol, after, current.as_of_ms)]
    out = []
    seen = after if after is not None else -1
    for inputs in due:
        if inputs.as_of_ms <= seen:  # a candle missing from storage: its row is an earlier one's
            continue
        seen = inputs.as_of_ms
        result = predictions.answer_with(entry, inputs, symbol)
        predictions.log_served(entry, result, inputs)
        out.append((inputs.as_of_ms, {"event": "prediction", "id": event_id(inputs.as_of_ms, index),
                                      "data": result}))
    cursor.after[symbol] = seen
    return out
