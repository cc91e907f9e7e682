"""Recorded exchange responses: a real ccxt.binance instance whose HTTP entry point replays files."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit

import ccxt
import pytest

from app.data.sources.exchange import ExchangeSource

RECORDED = Path(__file__).resolve().parent.parent / "fixtures" / "exchange"
T0 = 1_704_067_200_000  # 2024-01-01 00:00 UTC, where the recorded candles start
BAR = 60_000


class RecordedHttp:
    """Stands in for `Exchange.fetch(url, method, headers, body)`: serves the recorded response for
    the request's path + sorted query; a key with several responses serves them in turn (the last
    repeats). Error responses go through ccxt's own error mapping, as the real `fetch` does."""

    def __init__(self, client: ccxt.Exchange) -> None:
        self.client = client
        self.index: dict[str, list[dict]] = json.loads((RECORDED / "index.json").read_text())
        self.served: dict[str, int] = {}
        self.requests: list[str] = []

    def __call__(self, url: str, method: str = "GET", headers=None, body=None):
        parts = urlsplit(url)
        query = urlencode(sorted(parse_qsl(parts.query)))
        key = f"{method} {parts.path}" + (f"?{query}" if query else "")
        self.requests.append(key)
        if key not in self.index:
            raise AssertionError(f"no recorded response for {key}")
        n = self.served.get(key, 0)
        self.served[key] = n + 1
        answer = self.index[key][min(n, len(self.index[key]) - 1)]
        if "network_error" in answer:
            raise ccxt.NetworkError(f"binance {method} {url} {answer['network_error']}")
        text = (RECORDED / answer["file"]).read_text()
        payload = json.loads(text)
        status = answer["status"]
        if status >= 400:
            reason = {429: "Too Many Requests", 503: "Service Unavailable"}.get(status, "Error")
            self.client.handle_errors(status, reason, url, method, {}, text, payload, headers, body)
            self.client.handle_http_status_code(status, reason, url, method, text)
            raise ccxt.ExchangeError(f"binance {method} {url}")
        return payload

    def klines_starts(self) -> list[int]:
        """startTime of each klines request, in order."""
        return [int(dict(parse_qsl(k.split("?", 1)[1]))["startTime"]) for k in self.requests
                if "/klines?" in k]


@pytest.fixture()
def recorded_exchange() -> tuple[ExchangeSource, RecordedHttp, list[float]]:
    """(source on recorded Binance HTTP, the replay with its request log, the backoff sleeps)."""
    sleeps: list[float] = []
    source = ExchangeSource("binance", page_limit=100, max_tries=4, backoff_s=0.5, sleep=sleeps.append)
    http = RecordedHttp(source.client)
    source.client.fetch = http
    return source, http, sleeps
