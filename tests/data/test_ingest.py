from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from app.cli import app as cli
from app.core.config import reset_settings
from app.core.db import get_engine
from app.core.errors import BadInput
from app.data.candles import count_candles, last_candle_ts, load_candles
from app.data.frames import index_ms
from app.data.gaps import Gap
from app.services.ingest import ingest, ingest_tick
from app.tables.candles import Candle

T0 = 1_704_067_200_000  # 2024-01-01 00:00 UTC
BAR = 60_000
DAY = 86_400_000


def _sources(symbol: str) -> set[str]:
    with get_engine().connect() as conn:
        return set(conn.execute(select(Candle.source).where(Candle.symbol == symbol).distinct()).scalars())


def _csv(path: Path, minutes: list[int], bad: dict[int, str] | None = None) -> Path:
    rows = ["timestamp,open,high,low,close,volume"]
    for m in minutes:
        rows.append((bad or {}).get(m, f"{T0 + m * BAR},100,101,99,100.5,3"))
    path.write_text("\n".join(rows) + "\n")
    return path


# ---------------------------------------------------------------- csv
def test_csv_import_lands_good_rows_of_a_bad_batch_and_counts_each_rejection(tmp_path):
    bad = {
        2: f"{T0 + 2 * BAR},100,,99,100.5,3",
        3: f"{T0 + 3 * BAR},0,101,99,100.5,3",
        4: f"{T0 + 4 * BAR},100,100.1,99,100.5,3",
        5: f"{T0 + 5 * BAR},100,101,100.2,100.5,3",
        6: f"{T0 + 6 * BAR},100,101,99,100.5,-3",
        7: f"{T0 + 7 * BAR + 5},100,101,99,100.5,3",
    }
    path = _csv(tmp_path / "BTC-USDT_1m.csv", [*range(10), 9], bad)  # minute 9 twice
    [report] = ingest("csv", ["BTC-USDT"], path=path)
    assert report.rejected == {
        "nan": 1, "non_positive_price": 1, "high_below_open_close": 1, "low_above_open_close": 1,
        "negative_volume": 1, "unaligned_ts": 1, "duplicate_ts": 1,
    }
    assert report.fetched == 11 and report.added == 4
    assert list(index_ms(load_candles("BTC-USDT").index)) == [T0, T0 + BAR, T0 + 8 * BAR, T0 + 9 * BAR]
    assert _sources("BTC-USDT") == {"csv"}


def test_reimporting_the_same_file_adds_nothing(tmp_path):
    path = _csv(tmp_path / "BTC-USDT_1m.csv", list(range(30)))
    assert ingest("csv", ["BTC-USDT"], path=path)[0].added == 30
    again = ingest("csv", ["BTC-USDT"], path=path)[0]
    assert (again.fetched, again.added) == (30, 0)
    assert count_candles("BTC-USDT") == 30


def test_gaps_in_the_stored_series_are_reported_not_filled(tmp_path):
    path = _csv(tmp_path / "ETHUSDT-1m-2024-01-01.csv", [0, 1, 2, 6, 7, 9])
    [report] = ingest("csv", [], path=tmp_path)  # a directory: the symbol comes from the file name
    assert report.symbol == "ETH-USDT"
    assert report.gaps == [Gap(T0 + 3 * BAR, T0 + 5 * BAR, 3), Gap(T0 + 8 * BAR, T0 + 8 * BAR, 1)]
    assert count_candles("ETH-USDT") == 6
    # a later batch closes one gap and opens one; gaps are reported around the new candles only
    _csv(path, [8, 12])
    [later] = ingest("csv", [], path=tmp_path)
    assert later.gaps == [Gap(T0 + 10 * BAR, T0 + 11 * BAR, 2)]


def test_csv_of_higher_timeframes_or_unknown_symbols_is_refused(tmp_path):
    five = tmp_path / "five"
    five.mkdir()
    _csv(five / "BTC-USDT_5m.csv", [0, 5, 10])
    with pytest.raises(BadInput, match=r"skipped BTC-USDT_5m.csv: only 1m"):
        ingest("csv", [], path=five)
    with pytest.raises(BadInput, match="only 1m"):
        ingest("csv", [], path=five / "BTC-USDT_5m.csv")
    _csv(five / "BTC-USDT_1m.csv", [0, 1, 2])  # beside a 5m file, the 1m one is imported
    assert [r.added for r in ingest("csv", [], path=five)] == [3]
    spaced = _csv(tmp_path / "mystery.csv", [0, 5, 10])
    with pytest.raises(BadInput, match="minutes apart"):
        ingest("csv", ["BTC-USDT"], path=spaced)
    with pytest.raises(BadInput, match="cannot tell the symbol"):
        ingest("csv", [], path=spaced)
    with pytest.raises(BadInput, match="needs a path"):
        ingest("csv", ["BTC-USDT"])


# ---------------------------------------------------------------- exchange
def test_exchange_ingest_resumes_after_the_last_stored_candle(recorded_exchange):
    source, http, _ = recorded_exchange
    now = T0 + 250 * BAR + 30_000
    days = (now - T0) / DAY
    [first] = ingest("exchange", ["BTC-USDT"], days=days, now_ms=now, exchange=source)
    assert (first.added, first.first_ts, first.last_ts) == (250, T0, T0 + 249 * BAR)
    assert http.klines_starts() == [T0, T0 + 100 * BAR, T0 + 200 * BAR]

    http.requests.clear()
    later = T0 + 400 * BAR + 5_000
    [second] = ingest("exchange", ["BTC-USDT"], days=days, now_ms=later, exchange=source)
    assert http.klines_starts()[0] == first.last_ts + BAR  # asks from the last stored candle on
    assert (second.added, second.last_ts, second.gaps) == (150, T0 + 399 * BAR, [])
    assert last_candle_ts("BTC-USDT") == T0 + 399 * BAR

    http.requests.clear()
    [third] = ingest("exchange", ["BTC-USDT"], days=days, now_ms=later, exchange=source)
    assert (third.fetched, third.added) == (0, 0) and http.klines_starts() == []
    assert count_candles("BTC-USDT") == 400 and _sources("BTC-USDT") == {"exchange"}


# ---------------------------------------------------------------- simulated
def test_simulated_backfills_an_empty_store_then_extends_it_idempotently():
    now = T0 + 6 * 3_600_000 + 42_000
    reports = ingest("simulated", ["BTC-USDT", "ETH-USDT"], days=0.25, now_ms=now)
    last_complete = T0 + 6 * 3_600_000 - BAR
    for r in reports:
        assert (r.added, r.last_ts, r.first_ts, r.gaps) == (360, last_complete, last_complete - 359 * BAR, [])
    assert [r.added for r in ingest("simulated", ["BTC-USDT", "ETH-USDT"], days=0.25, now_ms=now)] == [0, 0]

    stored = load_candles("BTC-USDT")
    [more] = ingest("simulated", ["BTC-USDT"], days=0.25, now_ms=now + 5 * BAR)
    assert (more.added, more.first_ts, more.gaps) == (5, last_complete + BAR, [])
    grown = load_candles("BTC-USDT")
    assert grown["open"].iloc[360] == pytest.approx(stored["close"].iloc[-1])
    assert _sources("BTC-USDT") == {"simulated"}


def test_unknown_source_days_or_symbols_are_bad_input():
    with pytest.raises(BadInput, match="unknown source"):
        ingest("kraken", ["BTC-USDT"])
    with pytest.raises(BadInput, match="days must be"):
        ingest("simulated", ["BTC-USDT"], days=0)
    with pytest.raises(BadInput, match="BASE-QUOTE"):
        ingest("simulated", ["BTCUSDT"])


def test_the_minute_tick_follows_the_configured_source(monkeypatch):
    monkeypatch.setenv("SYMBOLS", "XRP-USDT")
    monkeypatch.setenv("BACKFILL_DAYS", "1")
    monkeypatch.setenv("MARKET_DATA_SOURCE", "csv")
    reset_settings()
    try:
        assert ingest_tick() == []
        monkeypatch.setenv("MARKET_DATA_SOURCE", "simulated")
        reset_settings()
        [report] = ingest_tick()
        assert (report.symbol, report.source) == ("XRP-USDT", "simulated")
        assert count_candles("XRP-USDT") == report.added >= 1440
    finally:
        monkeypatch.undo()
        reset_settings()


# ---------------------------------------------------------------- CLI
def test_cli_ingests_simulated_candles_with_a_summary():
    result = CliRunner().invoke(cli, ["ingest", "--source", "simulated", "--symbols", "BTC-USDT,ETH-USDT",
                                      "--days", "1"])
    assert result.exit_code == 0, result.output
    assert "ingest summary" in result.output and "BTC-USDT" in result.output
    assert count_candles("BTC-USDT") == count_candles("ETH-USDT") == 1440


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--source", "csv", "--symbols", "BTC-USDT"], "needs a path"),
        (["--source", "simulated", "--symbols", "BTC/USDT/X"], "BASE-QUOTE"),
        (["--source", "simulated", "--days", "-1"], "days must be"),
        (["--source", "nowhere"], "nowhere"),
    ],
)
def test_cli_bad_options_exit_2_with_a_message_not_a_traceback(args, message):
    result = CliRunner().invoke(cli, ["ingest", *args])
    assert result.exit_code == 2
    assert message in result.output and "Traceback" not in result.output
