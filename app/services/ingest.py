"""Getting candles into the store: from an exchange, CSV files or the simulator, validated, idempotent."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from sqlalchemy import func, select

from app.core.config import get_settings
from app.core.db import get_engine
from app.core.errors import BadInput
from app.core.logging import get_logger
from app.data.candles import last_candle_ts, load_candles, store_candles
from app.data.frames import index_ms
from app.data.gaps import Gap, find_gaps
from app.data.simulator import MarketSimulator
from app.data.sources import SOURCES
from app.data.sources.csv_source import infer_symbol, read_candles_csv
from app.data.sources.exchange import ExchangeSource
from app.data.validation import validate_candles
from app.tables.candles import Candle

BAR_MS = 60_000
DAY_MS = 86_400_000
_SYMBOL = re.compile(r"^[A-Z0-9]{2,15}-[A-Z0-9]{2,10}$")
_CSV_GLOBS = ("*.csv", "*.csv.zip", "*.zip", "*.csv.gz")

ProgressFn = Callable[[str, int, int], None]  # (symbol, bars done, bars expected)
log = get_logger(__name__)


@dataclass
class SymbolReport:
    symbol: str
    source: str
    fetched: int = 0  # rows received from the source
    added: int = 0  # rows newly stored (0 when re-ingesting the same candles)
    rejected: dict[str, int] = field(default_factory=dict)  # reason -> rows
    gaps: list[Gap] = field(default_factory=list)  # missing candles around what was ingested
    first_ts: int | None = None  # range of the valid candles received, ms
    last_ts: int | None = None


def ingest(
    source: str,
    symbols: list[str],
    days: float = 7.0,
    path: str | Path | None = None,
    progress: ProgressFn | None = None,
    now_ms: int | None = None,
    *,
    exchange: ExchangeSource | None = None,
    simulator: MarketSimulator | None = None,
) -> list[SymbolReport]:
    """Bring the store up to date for `symbols` from one source and say what happened per symbol.

    exchange: resumes after the last stored candle (at most `days` back) up to the last complete
    minute. csv: imports `path` (a file or a directory of files). simulated: back-fills `days` of
    history for a symbol without candles, else continues its stored history up to now. Re-running
    adds nothing new; bad rows are rejected with a reason while the good ones of the batch land.
    """
    if source not in SOURCES:
        raise BadInput(f"unknown source {source!r}; use one of: {', '.join(SOURCES)}")
    if not days > 0:
        raise BadInput(f"days must be > 0 (got {days})")
    symbols = normalize_symbols(symbols, required=source != "csv")
    now = int(time.time() * 1000) if now_ms is None else int(now_ms)
    if source == "exchange":
        exchange = exchange or ExchangeSource(get_settings().exchange)
        return [_ingest_exchange(exchange, s, days, now, progress) for s in symbols]
    if source == "csv":
        if path is None:
            raise BadInput("the csv source needs a path: a candle file or a directory of them (--path)")
        return _ingest_csv(Path(path), symbols, progress)
    simulator = simulator or MarketSimulator(get_settings().simulator_seed)
    return _ingest_simulated(simulator, symbols, days, now, progress)


def ingest_tick() -> list[SymbolReport]:
    """The 1-minute cron job: top up the configured symbols from MARKET_DATA_SOURCE (csv: nothing,
    files are imported by command)."""
    settings = get_settings()
    if settings.market_data_source == "csv":
        return []
    reports = ingest(settings.market_data_source, settings.symbols, days=float(settings.backfill_days))
    for r in reports:
        log.info("ingest_tick", symbol=r.symbol, source=r.source, added=r.added, rejected=r.rejected,
                 gaps=len(r.gaps))
    return reports


def normalize_symbols(symbols: list[str] | str, *, required: bool = True) -> list[str]:
    """`btc-usdt, ETH/USDT` -> ['BTC-USDT', 'ETH-USDT'], rejecting names that are not BASE-QUOTE."""
    if isinstance(symbols, str):
        symbols = symbols.split(",")
    out = []
    for raw in symbols:
        sym = raw.strip().upper().replace("/", "-")
        if not sym:
            continue
        if not _SYMBOL.match(sym):
            raise BadInput(f"symbol {raw!r} is not of the form BASE-QUOTE, e.g. BTC-USDT")
        if sym not in out:
            out.append(sym)
    if required and not out:
        raise BadInput("give at least one symbol, e.g. BTC-USDT,ETH-USDT")
    return out


def _ingest_exchange(
    exchange: ExchangeSource, symbol: str, days: float, now: int, progress: ProgressFn | None
) -> SymbolReport:
    window_start = -(-(now - int(days * DAY_MS)) // BAR_MS) * BAR_MS
    last = last_candle_ts(symbol)
    since = window_start if last is None else max(last + BAR_MS, window_start)
    report = (lambda done, total: progress(symbol, done, total)) if progress else None
    frame = exchange.fetch_ohlcv(symbol, since, now, progress=report)
    return _land(symbol, frame, "exchange")


def _ingest_csv(path: Path, symbols: list[str], progress: ProgressFn | None) -> list[SymbolReport]:
    by_symbol: dict[str, list[Path]] = {}
    skipped: list[str] = []
    for file, symbol in _csv_files(path, symbols, skipped):
        by_symbol.setdefault(symbol, []).append(file)
    if not by_symbol:
        note = f" (skipped {', '.join(skipped)}: only 1m candles are stored)" if skipped else ""
        raise BadInput(f"no 1m candle files for {', '.join(symbols) or 'any symbol'} in {path}{note}")
    reports = []
    for symbol, files in by_symbol.items():
        frame = pd.concat([read_candles_csv(f) for f in files], ignore_index=True)
        spacing = np.diff(np.unique(frame["ts"].dropna().to_numpy(dtype=np.int64)))
        if len(spacing) >= 2 and spacing.min() > BAR_MS:
            raise BadInput(
                f"{files[0].name} holds candles {int(spacing.min()) // BAR_MS} minutes apart; only 1m "
                "candles are stored (higher timeframes are resampled from them)"
            )
        report = _land(symbol, frame, "csv")
        if progress:
            progress(symbol, report.fetched, report.fetched)
        reports.append(report)
    return reports


def _csv_files(path: Path, symbols: list[str], skipped: list[str]) -> list[tuple[Path, str]]:
    """The 1m candle files to import with their symbols; other timeframes in a folder go to `skipped`."""
    if path.is_file():
        if len(symbols) == 1:
            return [(path, symbols[0])]
        files = [path]
    elif path.is_dir():
        files = sorted({f for pattern in _CSV_GLOBS for f in path.glob(pattern)})
    else:
        raise BadInput(f"no such file or directory: {path}")
    out = []
    for file in files:
        symbol, timeframe = infer_symbol(file)
        if symbol is None:
            raise BadInput(
                f"cannot tell the symbol of {file.name}; name it like BTCUSDT-1m-2024-01-01.csv or "
                "BTC-USDT_1m.csv, or import one file with a single --symbols"
            )
        if timeframe not in (None, "1m"):
            if path.is_file():
                raise BadInput(f"{file.name} holds {timeframe} candles; only 1m candles are stored")
            log.warning("csv_file_skipped", file=file.name, reason=f"{timeframe} candles; only 1m are stored")
            skipped.append(file.name)
            continue
        if not symbols or symbol in symbols:
            out.append((file, symbol))
    return out


def _ingest_simulated(
    simulator: MarketSimulator, symbols: list[str], days: float, now: int, progress: ProgressFn | None
) -> list[SymbolReport]:
    last_complete = now // BAR_MS * BAR_MS - BAR_MS
    n_bars = max(int(round(days * 1440)), 1)
    histories, fresh = {}, []
    for symbol in symbols:
        stored = load_candles(symbol, limit=1441)
        if stored.empty:
            fresh.append(symbol)
        else:
            histories[symbol] = stored
    frames = {}
    if fresh:
        frames.update(simulator.generate(fresh, last_complete - (n_bars - 1) * BAR_MS, n_bars))
    if histories:
        frames.update(simulator.extend(histories, last_complete, max_bars=n_bars))
    reports = []
    for symbol in symbols:
        report = _land(symbol, frames[symbol], "simulated")
        if progress:
            progress(symbol, report.fetched, report.fetched)
        reports.append(report)
    return reports


def _land(symbol: str, frame: pd.DataFrame, source: str) -> SymbolReport:
    """Validate, store the good rows, and report rejections and the gaps around the new candles."""
    result = validate_candles(frame)
    report = SymbolReport(symbol, source, fetched=len(frame), rejected=result.counts_by_reason())
    if result.rejected:
        log.warning("candles_rejected", symbol=symbol, source=source, counts=report.rejected,
                    first=[(r.ts, r.reason) for r in result.rejected[:3]])
    if result.good.empty:
        return report
    report.added = store_candles(symbol, result.good, source)
    report.first_ts, report.last_ts = int(result.good["ts"].iloc[0]), int(result.good["ts"].iloc[-1])
    report.gaps = _gaps_around(symbol, report.first_ts, report.last_ts)
    return report


def _gaps_around(symbol: str, first: int, last: int) -> list[Gap]:
    """Gaps among the stored candles from the one before `first` to the one after `last`."""
    query = select(func.max(Candle.ts)).where(Candle.symbol == symbol, Candle.timeframe == "1m",
                                              Candle.ts < first)
    after = select(func.min(Candle.ts)).where(Candle.symbol == symbol, Candle.timeframe == "1m",
                                              Candle.ts > last)
    with get_engine().connect() as conn:
        lo = conn.execute(query).scalar()
        hi = conn.execute(after).scalar()
    stored = load_candles(symbol, start_ts=first if lo is None else lo, end_ts=last if hi is None else hi)
    return find_gaps(index_ms(stored.index), "1m")
