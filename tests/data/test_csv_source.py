from pathlib import Path

import numpy as np
import pytest

from app.core.errors import BadInput
from app.data.sources.csv_source import infer_symbol, read_candles_csv

T0 = 1_704_067_200_000  # 2024-01-01 00:00 UTC
BAR = 60_000


def _kline(ts: int, unit: int = 1) -> str:
    """A Binance public kline row; `unit` 1000 turns ms into the µs Binance spot files use since 2025."""
    return (f"{ts * unit},42000.10,42010.00,41990.50,42005.00,12.5,{(ts + BAR - 1) * unit},525000.1,"
            "321,6.1,256000.2,0")


def _write(tmp_path: Path, name: str, lines: list[str]) -> Path:
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n")
    return path


def _check(frame, n: int = 3) -> None:
    assert frame["ts"].tolist() == [T0 + i * BAR for i in range(n)]
    assert frame["open"].iloc[0] == pytest.approx(42000.10) and frame["volume"].iloc[0] == pytest.approx(12.5)
    assert list(frame.columns) == ["ts", "open", "high", "low", "close", "volume"]


def test_binance_kline_file_with_millisecond_times(tmp_path):
    lines = [_kline(T0 + i * BAR) for i in range(3)]
    _check(read_candles_csv(_write(tmp_path, "BTCUSDT-1m-2024-01-01.csv", lines)))


def test_binance_kline_file_with_microsecond_times_from_2025(tmp_path):
    lines = [_kline(T0 + i * BAR, unit=1000) for i in range(3)]
    _check(read_candles_csv(_write(tmp_path, "BTCUSDT-1m-2025-01-01.csv", lines)))


def test_binance_kline_file_with_a_header_row(tmp_path):
    header = ("open_time,open,high,low,close,volume,close_time,quote_volume,count,taker_buy_volume,"
              "taker_buy_quote_volume,ignore")
    _check(read_candles_csv(_write(tmp_path, "k.csv", [header, *(_kline(T0 + i * BAR) for i in range(3))])))


@pytest.mark.parametrize(
    "stamps",
    [
        [str(T0 + i * BAR) for i in range(3)],  # ms
        [str((T0 + i * BAR) // 1000) for i in range(3)],  # s
        [str((T0 + i * BAR) * 1000) for i in range(3)],  # µs
        ["2024-01-01T00:00:00Z", "2024-01-01T00:01:00+00:00", "2024-01-01 00:02:00"],  # ISO, naive = UTC
    ],
    ids=["ms", "seconds", "microseconds", "iso8601"],
)
def test_plain_csv_with_header_in_any_time_unit(tmp_path, stamps):
    rows = [f"{s},42000.10,42010,41990.5,42005,12.5" for s in stamps]
    lines = ["timestamp,open,high,low,close,volume", *rows]
    _check(read_candles_csv(_write(tmp_path, "plain.csv", lines)))


def test_unreadable_cells_become_nan_for_validation_to_reject(tmp_path):
    lines = ["timestamp,open,high,low,close,volume", f"{T0},1,2,0.5,1.5,3", f"{T0 + BAR},oops,2,0.5,1.5,3"]
    frame = read_candles_csv(_write(tmp_path, "plain.csv", lines))
    assert len(frame) == 2 and np.isnan(frame["open"].iloc[1])


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        (["name,age", "bob,42"], "not a candle file"),
        (["1,2,3", "4,5,6"], "3 columns and no header"),
        (["timestamp,open,high,low,close,volume", "yesterday,1,2,0.5,1.5,3"], "cannot read the timestamps"),
        (["timestamp,open,high,low,close,volume", f"{T0},a,b,c,d,e"], "no numeric OHLCV"),
    ],
)
def test_files_that_are_not_candles_are_a_clear_bad_input(tmp_path, lines, message):
    with pytest.raises(BadInput, match=message):
        read_candles_csv(_write(tmp_path, "x.csv", lines))


def test_missing_or_empty_files_are_a_bad_input(tmp_path):
    with pytest.raises(BadInput, match="no such file"):
        read_candles_csv(tmp_path / "nope.csv")
    with pytest.raises(BadInput):
        read_candles_csv(_write(tmp_path, "empty.csv", []))


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("BTCUSDT-1m-2024-01-01.csv", ("BTC-USDT", "1m")),
        ("ETHUSDT-1m-2025-03.zip", ("ETH-USDT", "1m")),
        ("BTC-USDT_1m.csv", ("BTC-USDT", "1m")),
        ("XRP-USDT_5m.csv", ("XRP-USDT", "5m")),
        ("SOLFDUSD-1m-2024-01.csv", ("SOL-FDUSD", "1m")),
        ("candles.csv", (None, None)),
    ],
)
def test_symbol_and_timeframe_are_inferred_from_the_file_name(name, expected):
    assert infer_symbol(name) == expected
