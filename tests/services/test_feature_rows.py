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
