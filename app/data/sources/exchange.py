"""Public 1m OHLCV from an exchange through ccxt: paginated, rate-limited, retried with backoff."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

import ccxt
import numpy as np
import pandas as pd

from app.core.errors import BadInput, Unavailable
from app.core.logging import get_logger
from app.data.frames import OHLCV

BAR_MS = 60_000
# ccxt's transient family: NetworkError (RateLimitExceeded, ExchangeNotAvailable, RequestTimeout, ...)
# and OperationFailed, e.g. Binance's -1008 "server is currently overloaded".
RETRYABLE = (ccxt.NetworkError, ccxt.RateLimitExceeded, ccxt.ExchangeNotAvailable, ccxt.RequestTimeout,
             ccxt.OperationFailed)
# Only spot markets are traded here; loading the futures catalogues too would cost requests for nothing.
_EXCHANGE_OPTIONS: dict[str, dict[str, Any]] = {"binance": {"fetchMarkets": {"types": ["spot"]}}}

ProgressFn = Callable[[int, int], None]  # (bars fetched so far, bars expected)
T = TypeVar("T")
log = get_logger(__name__)


class ExchangeSource:
    """One exchange's public candles. `client` lets tests hand in an instance with recorded HTTP."""

    def __init__(
        self,
        exchange_id: str = "binance",
        client: ccxt.Exchange | None = None,
        *,
        page_limit: int = 1000,
        max_tries: int = 5,
        backoff_s: float = 1.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if client is None:
            if exchange_id not in ccxt.exchanges:
                raise BadInput(f"unknown exchange {exchange_id!r}; ccxt knows e.g. binance, kraken, okx")
            config = {"enableRateLimit": True, "options": _EXCHANGE_OPTIONS.get(exchange_id, {})}
            client = getattr(ccxt, exchange_id)(config)
        self.exchange_id = exchange_id
        self.client = client
        self.page_limit = page_limit
        self.max_tries = max_tries
        self.backoff_s = backoff_s
        self.sleep = sleep

    def fetch_ohlcv(
        self, symbol: str, since_ms: int, until_ms: int | None = None, progress: ProgressFn | None = None
    ) -> pd.DataFrame:
        """Complete 1m candles with open time in [since_ms, until_ms) (until: now), oldest first.

        The candle that is still forming at `until_ms` is left out, so a stored candle never changes
        later. Pages follow each other from the last candle received; duplicates are dropped.
        """
        market = self._market_symbol(symbol)
        now = self.client.milliseconds() if until_ms is None else int(until_ms)
        end = now // BAR_MS * BAR_MS  # open time of the forming candle: excluded
        since = -(-int(since_ms) // BAR_MS) * BAR_MS
        expected = max((end - since) // BAR_MS, 0)
        rows: list[list[float]] = []
        cursor = since
        while cursor < end:
            page = self._retry(
                f"fetch_ohlcv {market}",
                lambda c=cursor: self.client.fetch_ohlcv(market, "1m", c, self.page_limit),
            )
            page = [row for row in page if row[0] >= cursor]
            if not page:
                break  # nothing more listed (a delisted market or an outage at the end)
            rows.extend(row for row in page if row[0] < end)
            cursor = int(page[-1][0]) + BAR_MS
            if progress is not None:
                progress(min(len(rows), expected), expected)
        return _frame(rows)

    def _market_symbol(self, symbol: str) -> str:
        market = symbol.strip().upper().replace("-", "/")
        markets = self._retry("load_markets", self.client.load_markets)
        if market not in markets:
            raise BadInput(f"{self.exchange_id} has no market {market} (from {symbol!r}); use e.g. BTC-USDT")
        return market

    def _retry(self, what: str, call: Callable[[], T]) -> T:
        """Transient failures (network, 429, maintenance, timeouts) are retried with exponential
        backoff; anything else, or the last failure, becomes Unavailable with the exchange's words."""
        for attempt in range(1, self.max_tries + 1):
            try:
                return call()
            except RETRYABLE as exc:
                if attempt == self.max_tries:
                    raise Unavailable(
                        f"{self.exchange_id} {what} failed after {attempt} tries: {type(exc).__name__}: {exc}"
                    ) from exc
                delay = self.backoff_s * 2 ** (attempt - 1)
                log.warning("exchange_retry", exchange=self.exchange_id, what=what, attempt=attempt,
                            delay_s=delay, error=type(exc).__name__)
                self.sleep(delay)
            except ccxt.BadSymbol as exc:
                raise BadInput(f"{self.exchange_id}: {exc}") from exc
            except ccxt.BaseError as exc:
                raise Unavailable(f"{self.exchange_id} {what} failed: {type(exc).__name__}: {exc}") from exc
        raise AssertionError("unreachable")


def _frame(rows: list[list[float]]) -> pd.DataFrame:
    if not rows:
        empty = {c: np.array([], dtype=float) for c in OHLCV}
        return pd.DataFrame({"ts": np.array([], dtype=np.int64), **empty})
    frame = pd.DataFrame(rows, columns=["ts", *OHLCV])
    frame["ts"] = frame["ts"].astype("int64")
    return frame.drop_duplicates("ts", keep="last").sort_values("ts").reset_index(drop=True)
