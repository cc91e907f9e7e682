"""Candle storage: idempotent inserts and time-indexed reads of the `candles` table."""

from __future__ import annotations

import pandas as pd
from sqlalchemy import func, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine

from app.core.db import get_engine
from app.data.frames import OHLCV, candles_frame
from app.tables.candles import Candle

_CHUNK = 5_000


def store_candles(
    symbol: str, frame: pd.DataFrame, source: str, timeframe: str = "1m", engine: Engine | None = None
) -> int:
    """Insert validated candles (`ts` int ms + OHLCV columns); rows already stored are left as they are.

    Returns the number of rows actually added, so re-ingesting the same candles reports 0.
    """
    if frame.empty:
        return 0
    engine = engine or get_engine()
    insert = postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert
    rows = [
        {"symbol": symbol, "timeframe": timeframe, "ts": int(ts), "source": source,
         **{c: float(v) for c, v in zip(OHLCV, values, strict=True)}}
        for ts, *values in frame[["ts", *OHLCV]].itertuples(index=False, name=None)
    ]
    in_batch = select(func.count()).select_from(Candle).where(
        Candle.symbol == symbol,
        Candle.timeframe == timeframe,
        Candle.ts.between(int(frame["ts"].min()), int(frame["ts"].max())),
    )
    stmt = insert(Candle).on_conflict_do_nothing()
    with engine.begin() as conn:  # one transaction: the before/after counts see only our writes
        before = conn.execute(in_batch).scalar_one()
        for start in range(0, len(rows), _CHUNK):
            conn.execute(stmt, rows[start : start + _CHUNK])  # executemany: fast on both backends
        added = conn.execute(in_batch).scalar_one() - before
    return added


def load_candles(
    symbol: str,
    timeframe: str = "1m",
    *,
    start_ts: int | None = None,
    end_ts: int | None = None,
    limit: int | None = None,
    engine: Engine | None = None,
) -> pd.DataFrame:
    """Stored candles in [start_ts, end_ts] (ms), oldest first; with `limit`, the newest `limit` of them.

    The frame is indexed by a UTC DatetimeIndex named `ts` and has float OHLCV columns.
    """
    stmt = select(Candle.ts, Candle.open, Candle.high, Candle.low, Candle.close, Candle.volume).where(
        Candle.symbol == symbol, Candle.timeframe == timeframe
    )
    if start_ts is not None:
        stmt = stmt.where(Candle.ts >= start_ts)
    if end_ts is not None:
        stmt = stmt.where(Candle.ts <= end_ts)
    if limit is not None:
        stmt = stmt.order_by(Candle.ts.desc()).limit(limit)
    else:
        stmt = stmt.order_by(Candle.ts)
    with (engine or get_engine()).connect() as conn:
        # plain tuples: pandas probes each Row's attributes, and every miss raised (and built) an exception
        rows = [tuple(row) for row in conn.execute(stmt).all()]
    frame = pd.DataFrame(rows, columns=["ts", *OHLCV])
    if limit is not None:
        frame = frame.iloc[::-1]
    return candles_frame(frame)


def last_candle_ts(
    symbol: str, timeframe: str = "1m", engine: Engine | None = None, *, at_or_before: int | None = None
) -> int | None:
    """The newest stored candle's time (ms), optionally the newest at or before `at_or_before`."""
    stmt = select(func.max(Candle.ts)).where(Candle.symbol == symbol, Candle.timeframe == timeframe)
    if at_or_before is not None:
        stmt = stmt.where(Candle.ts <= int(at_or_before))
    with (engine or get_engine()).connect() as conn:
        return conn.execute(stmt).scalar()


def last_candle_ts_many(
    symbols: list[str], timeframe: str = "1m", engine: Engine | None = None, *, chunk: int = 200
) -> dict[str, int | None]:
    """`last_candle_ts` of many symbols in one round trip: one SELECT of a max() subquery per symbol, so
    each is its own backward walk of the (symbol, timeframe, ts) key (a GROUP BY over `IN (...)` would read
    every candle of those symbols)."""
    out: dict[str, int | None] = {}
    with (engine or get_engine()).connect() as conn:
        for i in range(0, len(symbols), chunk):
            part = symbols[i : i + chunk]
            stmt = select(*(
                select(func.max(Candle.ts)).where(Candle.symbol == s, Candle.timeframe == timeframe)
                .scalar_subquery() for s in part
            ))
            out.update(zip(part, conn.execute(stmt).one(), strict=True))
    return out


def count_candles(symbol: str | None = None, timeframe: str = "1m", engine: Engine | None = None) -> int:
    stmt = select(func.count()).select_from(Candle).where(Candle.timeframe == timeframe)
    if symbol is not None:
        stmt = stmt.where(Candle.symbol == symbol)
    with (engine or get_engine()).connect() as conn:
        return int(conn.execute(stmt).scalar() or 0)


def stored_sources(symbol: str, start_ts: int, end_ts: int, engine: Engine | None = None) -> set[str]:
    """Where the stored candles of [start_ts, end_ts] came from (`exchange`, `csv`, `simulated`)."""
    stmt = select(Candle.source).distinct().where(
        Candle.symbol == symbol, Candle.timeframe == "1m", Candle.ts.between(start_ts, end_ts)
    )
    with (engine or get_engine()).connect() as conn:
        return set(conn.execute(stmt).scalars())


# DISTINCT over the whole table scans it; this walks the (symbol, timeframe, ts) key one symbol at a time.
_SYMBOLS = text("""
WITH RECURSIVE s(symbol) AS (
    SELECT (SELECT symbol FROM candles ORDER BY symbol LIMIT 1)
    UNION ALL
    SELECT (SELECT c.symbol FROM candles c WHERE c.symbol > s.symbol ORDER BY c.symbol LIMIT 1)
    FROM s WHERE s.symbol IS NOT NULL
)
SELECT symbol FROM s WHERE symbol IS NOT NULL
""")


def stored_symbols(engine: Engine | None = None) -> set[str]:
    """Every symbol with stored candles, in one index walk (fast whatever the number of candles)."""
    with (engine or get_engine()).connect() as conn:
        return set(conn.execute(_SYMBOLS).scalars())
