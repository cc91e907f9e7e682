"""The candles a cycle works on: the catch-up ingest, the rolling window, and the newest unseen hours."""

from __future__ import annotations

import time
from typing import Any

import pandas as pd

from app.core.config import get_settings
from app.core.errors import Unavailable
from app.core.logging import get_logger
from app.data.candles import last_candle_ts, load_candles
from app.data.frames import timeframe_ms

log = get_logger(__name__)

DAY_MS = 86_400_000
HOUR_MS = 3_600_000


def catch_up(symbols: list[str]) -> dict[str, Any]:
    """DESIGN 2: csv does nothing; an exchange failure is a warning unless the newest candle is too old.

    Returns {"source", "added", "warning"}; raises `Unavailable` (the cycle fails) when the exchange could
    not be reached and the stored data is older than `staleness_limit_minutes`.
    """
    settings = get_settings()
    source = settings.market_data_source
    if source == "csv":
        return {"source": source, "added": 0, "warning": None, "note": "csv: files are imported by command"}
    from app.services.ingest import ingest

    warning = None
    added = 0
    try:
        reports = ingest(source, symbols, days=float(settings.backfill_days))
        added = sum(r.added for r in reports)
    except Exception as exc:  # noqa: BLE001 - any source failure is judged by the staleness rule below
        warning = f"catch-up ingest from {source} failed: {type(exc).__name__}: {exc}"
        log.warning("cycle catch-up failed", source=source, error=str(exc))
        newest = newest_ts(symbols)
        limit_ms = settings.staleness_limit_minutes * 60_000
        age_ms = None if newest is None else int(time.time() * 1000) - newest
        if age_ms is None or age_ms > limit_ms:
            age = (
                "no candles stored"
                if age_ms is None
                else f"the newest candle is {age_ms / 60_000:.0f} min old"
            )
            raise Unavailable(
                f"{warning}; {age}, beyond the staleness limit of {settings.staleness_limit_minutes} min "
                "(STALENESS_LIMIT_MINUTES): fix the exchange connection or import candles, then rerun"
            ) from exc
    return {"source": source, "added": added, "warning": warning}


def newest_ts(symbols: list[str], at_or_before: int | None = None) -> int | None:
    stamps = [ts for ts in (last_candle_ts(s, at_or_before=at_or_before) for s in symbols) if ts is not None]
    return max(stamps) if stamps else None


def anchor_ts(symbols: list[str], as_of_ms: int | None = None) -> int:
    """The cycle's "now": the newest stored candle (a cycle over historical data acts like a live one);
    with `as_of_ms` (a replay step), the newest at or before it, so the cycle sees nothing later."""
    newest = newest_ts(symbols, as_of_ms)
    if newest is None:
        when = "" if as_of_ms is None else f" at or before {as_of_ms}"
        raise Unavailable(
            f"no candles stored for {', '.join(symbols)}{when}; run `mlpipe ingest` "
            "(or set MARKET_DATA_SOURCE)"
        )
    return newest


def load_history(
    symbols: list[str], start_ms: int, days: float, timeframe: str = "1m"
) -> dict[str, pd.DataFrame]:
    """Candles of the `days` days before `start_ms` (a model's longer history); {} when none are stored."""
    if days <= 0:
        return {}
    try:
        return load_range(symbols, start_ms - int(days * DAY_MS), start_ms - 1, timeframe)
    except Unavailable:
        return {}


def load_range(
    symbols: list[str], start_ms: int, end_ms: int, timeframe: str = "1m", warmup_bars: int = 0
) -> dict[str, pd.DataFrame]:
    """Candles of every symbol in [start_ms - warm-up, end_ms], resampled when the timeframe is not 1m."""
    bar = timeframe_ms(timeframe)
    out = {}
    for symbol in symbols:
        frame = load_candles(symbol, "1m", start_ts=start_ms - warmup_bars * bar, end_ts=end_ms)
        if timeframe != "1m" and not frame.empty:
            from app.features import resample

            frame = resample(frame, timeframe)
        if not frame.empty:
            out[symbol] = frame
    if not out:
        raise Unavailable(f"no candles for {', '.join(symbols)} between {start_ms} and {end_ms}")
    return out
