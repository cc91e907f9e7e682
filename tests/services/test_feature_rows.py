"""The feature-row cache owns its TTL: the newest candle is re-read only after it, one read at a time."""

from __future__ import annotations

import threading
import time

from app.services.feature_rows import FeatureRowCache


def test_newest_candle_is_reread_only_after_the_ttl() -> None:
    reads: list[str] = []
    newest = {"BTC-USDT": 1_000}

    def read(symbol: str) -> int | None:
        reads.append(symbol)
        return newest.get(symbol)

    rows = FeatureRowCache(read, lambda: list(newest), ttl=0.2, serve_stale=0.5)

    assert rows.newest("BTC-USDT") == 1_000
    newest["BTC-USDT"] = 61_000
    assert rows.newest("BTC-USDT") == 1_000 and rows.fresh_newest("BTC-USDT") == (True, 1_000)
    time.sleep(0.25)
    assert rows.newest("BTC-USDT") == 61_000
    assert reads == ["BTC-USDT", "BTC-USDT"]


def test_the_event_loop_path_never_waits_and_refreshes_behind() -> None:
    newest = {"BTC-USDT": 1_000}
    rows = FeatureRowCache(lambda s: newest[s], lambda: list(newest), ttl=0.1, serve_stale=0.4)
    rows.newest("BTC-USDT")
    newest["BTC-USDT"] = 61_000
    time.sleep(0.15)

    assert rows.fresh_newest("BTC-USDT") == (True, 1_000)  # stale but young: answered, re-read started
    time.sleep(0.1)
    assert rows.fresh_newest("BTC-USDT") == (True, 61_000)  # the background read landed
    time.sleep(0.45)
    assert rows.fresh_newest("BTC-USDT") == (False, None)  # too old to serve without a read


def test_an_invented_symbol_is_known_absent_without_a_read() -> None:
    reads: list[str] = []
    rows = FeatureRowCache(lambda s: reads.append(s) or 1, lambda: ["BTC-USDT"])

    assert rows.newest("NOPE-USDT") is None
    assert rows.surely_absent("NOPE-USDT") and not rows.surely_absent("BTC-USDT")
    assert reads == []


def test_a_slow_database_is_answered_from_the_last_known_candle() -> None:
    gate = threading.Event()
    calls = {"n": 0}

    def read(symbol: str) -> int:
        calls["n"] += 1
        if calls["n"] > 1:
            gate.wait(5)
        return 60_000 * calls["n"]

    rows = FeatureRowCache(read, lambda: ["BTC-USDT"], ttl=0.05, fresh_wait=0.1)
    assert rows.newest("BTC-USDT") == 60_000
    time.sleep(0.06)
    started = time.monotonic()
    assert rows.newest("BTC-USDT") == 60_000  # the re-read hangs: the last known candle answers
    assert time.monotonic() - started < 0.5
    gate.set()


def test_clear_empties_rows_and_newest_candles() -> None:
    rows = FeatureRowCache(lambda s: 5, lambda: ["BTC-USDT"])
    rows.newest("BTC-USDT")
    rows.put(("BTC-USDT", "1m", 5, ("returns",)), object())  # type: ignore[arg-type]
    rows.clear()

    assert rows.get(("BTC-USDT", "1m", 5, ("returns",))) is None
    assert rows.fresh_newest("BTC-USDT") == (False, None)


def test_symbols_asked_lately_are_reread_together_in_one_query() -> None:
    queries: list[list[str]] = []
    newest = {f"S{i:02d}-USDT": 1_000 for i in range(30)}

    def many(names: list[str]) -> dict[str, int | None]:
        queries.append(list(names))
        return {n: newest.get(n) for n in names}

    rows = FeatureRowCache(symbols=lambda: [*newest, "IDLE-USDT"], newest_many=many, ttl=0.1, serve_stale=1.0)
    newest["IDLE-USDT"] = 1_000
    rows.newest("IDLE-USDT")  # asked once, then not again
    time.sleep(1.05)
    for symbol in list(newest)[:30]:
        assert rows.newest(symbol) == 1_000  # a first read waits for its own query
    time.sleep(0.15)
    for symbol in list(newest)[:30]:
        newest[symbol] = 61_000
    queries.clear()

    answers = [rows.newest(symbol) for symbol in list(newest)[:30]]

    assert answers == [61_000] * 30
    assert len(queries) == 1 and sorted(queries[0]) == sorted(list(newest)[:30])  # not IDLE-USDT
