"""Candle files: Binance public kline dumps and plain `timestamp,open,high,low,close,volume` CSVs."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from app.core.errors import BadInput
from app.data.frames import OHLCV

BINANCE_COLUMNS = [
    "open_time", "open", "high", "low", "close", "volume", "close_time", "quote_volume",
    "trades", "taker_base", "taker_quote", "ignore",
]
_TIME_NAMES = ("timestamp", "timestamp_ms", "ts", "time", "open_time", "date", "datetime")
_QUOTES = ("FDUSD", "USDT", "USDC", "BUSD", "TUSD", "DAI", "BTC", "ETH", "BNB", "EUR", "TRY", "USD")
_SUFFIXES = (".csv", ".csv.zip", ".zip", ".csv.gz", ".gz")


def read_candles_csv(path: str | Path) -> pd.DataFrame:
    """Candles of one file as an int-ms `ts` column plus OHLCV, in file order and not yet validated.

    Cells that are not numbers become NaN (validation rejects those rows); a file that is not a
    candle file at all raises BadInput saying which formats are understood.
    """
    path = Path(path)
    if not path.is_file():
        raise BadInput(f"no such file: {path}")
    try:
        raw = pd.read_csv(path, header=None, dtype=str, skip_blank_lines=True)
    except (ValueError, OSError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        raise BadInput(f"cannot read {path.name} as CSV: {exc}") from None
    if raw.empty:
        raise BadInput(f"{path.name} holds no candles")
    first = raw.iloc[0].fillna("").tolist()
    has_header = not _is_number(first[0]) and not _is_iso_time(first[0])
    if has_header:
        names = [str(x).strip().lower() for x in first]
        body = raw.iloc[1:].reset_index(drop=True)
    else:
        names, body = _positional_names(path, raw.shape[1]), raw
    body.columns = names
    time_col = next((n for n in _TIME_NAMES if n in names), None)
    if time_col is None or any(c not in names for c in OHLCV):
        raise BadInput(
            f"{path.name}: not a candle file; expected Binance klines (12 columns, no header or with "
            f"open_time,...) or a CSV with columns timestamp,open,high,low,close,volume; got {names[:8]}"
        )
    frame = pd.DataFrame({"ts": _to_ms(body[time_col], path)})
    for col in OHLCV:
        frame[col] = pd.to_numeric(body[col].str.strip(), errors="coerce")
    if frame[list(OHLCV)].isna().all(axis=None):
        raise BadInput(f"{path.name}: no numeric OHLCV values; is it a candle file?")
    return frame


def infer_symbol(path: str | Path) -> tuple[str | None, str | None]:
    """(symbol, timeframe) from names like `BTCUSDT-1m-2024-01-01.csv` or `BTC-USDT_1m.csv`."""
    name = Path(path).name
    for suffix in _SUFFIXES:
        if name.lower().endswith(suffix):
            name = name[: -len(suffix)]
            break
    m = re.match(r"^([A-Za-z0-9]+)[-_/]([A-Za-z0-9]+)[-_](\d+[smhdwM])\b", name)
    if m and not m.group(2)[0].isdigit():
        return f"{m.group(1).upper()}-{m.group(2).upper()}", m.group(3)
    m = re.match(r"^([A-Za-z0-9]+?)[-_](\d+[smhdwM])\b", name)
    if m:
        return _split_pair(m.group(1)), m.group(2)
    m = re.match(r"^([A-Za-z0-9]+)[-_]([A-Za-z]+)$", name)
    if m:
        return f"{m.group(1).upper()}-{m.group(2).upper()}", None
    return _split_pair(name), None


def _split_pair(compact: str) -> str | None:
    compact = compact.upper()
    for quote in _QUOTES:
        if compact.endswith(quote) and len(compact) > len(quote):
            return f"{compact[: -len(quote)]}-{quote}"
    return None


def _positional_names(path: Path, n_columns: int) -> list[str]:
    if n_columns == 12:
        return BINANCE_COLUMNS
    if n_columns == 6:
        return ["timestamp", *OHLCV]
    raise BadInput(
        f"{path.name}: {n_columns} columns and no header; expected 12 (Binance klines) or 6 "
        "(timestamp,open,high,low,close,volume)"
    )


def _to_ms(column: pd.Series, path: Path) -> pd.Series:
    """Epoch seconds, ms, µs or ns (by magnitude, per row: Binance spot files switched to µs in 2025),
    or ISO-8601 text (naive times are taken as UTC)."""
    text = column.astype(str).str.strip()
    numbers = pd.to_numeric(text, errors="coerce")
    if numbers.notna().mean() >= 0.5:
        value = numbers.to_numpy(dtype="float64", na_value=np.nan)
        magnitude = np.abs(value)
        divisor = np.select([magnitude < 1e14, magnitude < 1e17], [1.0, 1e3], default=1e6)
        ms = np.where(magnitude < 1e11, value * 1000.0, value / divisor)
        return pd.Series(np.floor(ms + 1e-3), dtype="float64")
    parsed = pd.to_datetime(text, utc=True, errors="coerce", format="ISO8601")
    if parsed.notna().mean() < 0.5:
        raise BadInput(
            f"{path.name}: cannot read the timestamps (e.g. {text.iloc[0]!r}); use epoch ms or ISO-8601"
        )
    ms = parsed.dt.as_unit("ms").astype("int64").astype("float64")
    return ms.where(parsed.notna())


def _is_number(cell: object) -> bool:
    try:
        float(str(cell).strip())
    except ValueError:
        return False
    return True


def _is_iso_time(cell: object) -> bool:
    return bool(re.match(r"^\d{4}-\d{2}-\d{2}", str(cell).strip()))
