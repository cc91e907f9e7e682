"""The serving cache of feature rows: one object that owns every piece of state the predict path keeps.

A row is keyed by (symbol, timeframe, newest stored 1m candle, features), so repeated requests between two
candles compute nothing. Which candle is newest is re-read at most every `ttl` seconds per symbol (candles
arrive once a minute), one read per symbol at a time on a daemon thread, so a hung database blocks only
that read. A re-read also takes along every other symbol asked in the last `serve_stale` seconds whose
value is at least half a TTL old, in the same query (`last_candle_ts_many`): a client cycling over 300
symbols costs a few queries a second, not one per symbol per TTL. The symbols that have candles at all
are re-read at most once a second, so requests naming invented symbols cost no query each.

The API process makes one (`get_feature_rows`) and routes receive it through `FeatureRowsDep`; tests and
benchmarks may make their own.
"""

from __future__ import annotations

import concurrent.futures
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

ROWS = 4096  # (symbol, model) rows: 300 symbols x 5 champions x a few timeframes fit, ~1 KB each
SYMBOLS = 4096  # symbols whose newest candle is remembered: requests naming many cannot grow memory
BATCH = 500  # symbols re-read in one query at most


@dataclass(frozen=True)
class Inputs:
    """One row of model inputs, no frames: what the answer and its log entry need."""

    values: np.ndarray  # float64, the model's features in its order
    context: dict[str, float] | None  # close and scale (volatility per bar) of that candle
    as_of_ms: int
    source: str  # stored_candles | candles | features
    scorable: bool = True  # the candle time is known, so the outcome can be looked up later


class FeatureRowCache:
    """Feature rows and the newest stored candle per symbol, each with its own time to live."""

    def __init__(
        self,
        newest: Callable[[str], int | None] | None = None,
        symbols: Callable[[], Any] | None = None,
        *,
        newest_many: Callable[[list[str]], dict[str, int | None]] | None = None,
        ttl: float = 0.5,
        fresh_wait: float = 0.25,
        stale_ok: float = 60.0,
        symbols_ttl: float = 1.0,
        serve_stale: float = 2.0,
        size: int = ROWS,
    ) -> None:
        from app.data.candles import last_candle_ts_many, stored_symbols

        if newest_many is None:
            newest_many = (lambda names: {s: newest(s) for s in names}) if newest else last_candle_ts_many
        self._read_many = newest_many
        self._list = symbols or stored_symbols
        self.ttl = ttl  # how long a newest-candle read answers without a re-read
        self.fresh_wait = fresh_wait  # how long a request waits for a re-read before the last known value
        self.stale_ok = stale_ok  # ... and how old that value may be (older: the request waits)
        self.symbols_ttl = symbols_ttl
        self.serve_stale = serve_stale  # the event-loop path answers from a read this old, re-reading behind
        self._size = size
        self._rows: OrderedDict[tuple, Inputs] = OrderedDict()
        self._newest: OrderedDict[str, tuple[float, int | None]] = OrderedDict()
        self._reads: dict[str, tuple[float, concurrent.futures.Future[int | None]]] = {}
        self._asked: dict[str, float] = {}  # when each symbol was last asked for (which re-reads to batch)
        self._symbols: tuple[float, frozenset[str]] = (float("-inf"), frozenset())
        self._lock = threading.Lock()
        # the symbol list is read from the database under its own lock: holding `_lock` through that read
        # would stall the event loop's `fresh_newest` (which takes `_lock` briefly) while the database hangs
        self._symbols_lock = threading.Lock()

    # ---- rows ------------------------------------------------------------------------------------------
    def get(self, key: tuple) -> Inputs | None:
        return self._rows.get(key)

    def put(self, key: tuple, value: Inputs) -> None:
        with self._lock:
            self._rows[key] = value
            while len(self._rows) > self._size:
                self._rows.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._rows.clear()
            self._newest.clear()
            self._asked.clear()
            self._symbols = (float("-inf"), frozenset())

    # ---- newest candle, without I/O (the event loop) -----------------------------------------------------
    def fresh_newest(self, symbol: str) -> tuple[bool, int | None]:
        """(known, newest ts) from memory alone, never waiting: known when read within the TTL, or within
        `serve_stale` seconds, in which case a re-read starts in the background (the next request gets it).
        A request thus never waits for the once-every-TTL re-read; `as_of` says which candle answered."""
        hit = self._newest.get(symbol)
        if hit is None:
            return False, None
        now = time.monotonic()
        self._asked[symbol] = now
        age = now - hit[0]
        if age < self.ttl:
            return True, hit[1]
        if age < self.serve_stale:
            self._read_newest(symbol)  # at most one read per symbol at a time, on its own thread
            return True, hit[1]
        return False, None

    def surely_absent(self, symbol: str) -> bool:
        """True when the symbol list read within the last second does not hold it (no I/O)."""
        read_at, known = self._symbols
        return time.monotonic() - read_at < self.symbols_ttl and symbol not in known and (
            symbol not in self._newest
        )

    # ---- newest candle, may read the database (threads) --------------------------------------------------
    def newest(self, symbol: str) -> int | None:
        """The newest stored 1m candle of `symbol` (None: none stored).

        While the database is slow or down, a symbol read in the last `stale_ok` seconds is answered from its
        last known candle after `fresh_wait`, so predictions from cached inputs stay fast (`as_of` says which
        candle they are from); one never read waits for the database, within its timeouts.
        """
        hit = self._newest.get(symbol)
        now = time.monotonic()
        age = now - hit[0] if hit is not None else None
        if hit is None and not self._may_have_candles(symbol):
            return None
        self._asked[symbol] = now  # only symbols with candles: invented names cannot grow it
        if hit is not None and age is not None and age < self.ttl:
            return hit[1]
        started, future = self._read_newest(symbol)
        if hit is None or (age is not None and age >= self.stale_ok):
            return future.result()
        wait = max(0.0, self.fresh_wait - (time.monotonic() - started))  # one wait per slow read, not each
        try:
            return future.result(timeout=wait)
        except Exception:  # noqa: BLE001 - slow (TimeoutError) or down: the last known candle answers
            return hit[1]

    def _may_have_candles(self, symbol: str) -> bool:
        if symbol in self._symbols[1]:
            return True
        with self._symbols_lock:
            read_at, known = self._symbols
            if time.monotonic() - read_at >= self.symbols_ttl:
                known = frozenset(self._list())
                self._symbols = (time.monotonic(), known)
        return symbol in known

    def _read_newest(self, symbol: str) -> tuple[float, concurrent.futures.Future[int | None]]:
        with self._lock:
            running = self._reads.get(symbol)
            if running is not None:
                return running
            now = time.monotonic()
            along = []
            for other, asked in list(self._asked.items()):
                if now - asked >= self.serve_stale:
                    self._asked.pop(other, None)  # not asked lately: not re-read until asked again
                elif other != symbol and other not in self._reads and len(along) < BATCH - 1:
                    read_at = self._newest.get(other, (float("-inf"), None))[0]
                    if now - read_at >= self.ttl / 2:
                        along.append(other)
            names = [symbol, *along]
            reads = {name: (now, concurrent.futures.Future()) for name in names}
            self._reads.update(reads)

        def read() -> None:
            try:
                values = self._read_many(names)
                with self._lock:
                    for name in names:
                        self._newest[name] = (time.monotonic(), values.get(name))
                        self._newest.move_to_end(name)
                    while len(self._newest) > SYMBOLS:
                        self._newest.popitem(last=False)
                for name in names:
                    reads[name][1].set_result(values.get(name))
            except BaseException as exc:  # handed to the waiting request (a 503), or dropped if none waits
                for name in names:
                    reads[name][1].set_exception(exc)
            finally:
                with self._lock:
                    for name in names:
                        if self._reads.get(name) is reads[name]:
                            del self._reads[name]

        threading.Thread(target=read, name="newest-candle", daemon=True).start()
        return reads[symbol]


_rows: FeatureRowCache | None = None


def get_feature_rows() -> FeatureRowCache:
    """The process's feature-row cache (the API's routes get it through `FeatureRowsDep`)."""
    global _rows
    if _rows is None:
        _rows = FeatureRowCache()
    return _rows
