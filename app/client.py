"""A small HTTP client for strategies: `from app.client import Client`.

It needs only httpx and the standard library, so a trading bot can import it without the server's
dependencies (FastAPI, databases, pandas, torch...).

    client = Client("http://127.0.0.1:8000", api_key="mlp_...")   # or set MLPIPE_API_KEY
    answer = client.predict("direction", symbol="BTC-USDT")
    client.force_cycle(wait=True)                                  # needs an operator key

Every non-2xx answer raises `ClientError(status_code, detail)` carrying the server's own message; a server
that cannot be reached raises it with `status_code=None`.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import httpx

__all__ = ["Client", "ClientError"]

CYCLE_RUNNING_STATES = frozenset({"queued", "running"})


class ClientError(Exception):
    """The server refused or failed a request (`status_code`), or could not be reached (`None`)."""

    def __init__(self, status_code: int | None, detail: str, body: Any = None) -> None:
        super().__init__(f"{status_code}: {detail}" if status_code is not None else detail)
        self.status_code = status_code
        self.detail = detail
        self.body = body


def _jsonable(value: Any) -> Any:
    """numpy scalars and arrays, timestamps: whatever a strategy has at hand, without importing numpy."""
    if hasattr(value, "tolist"):
        return value.tolist()
    if hasattr(value, "item"):
        return value.item()
    if hasattr(value, "isoformat"):
        return value.isoformat()
    raise TypeError(f"cannot send a {type(value).__name__} as JSON")


def _detail(response: httpx.Response) -> tuple[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return (response.text.strip()[:500] or response.reason_phrase), None
    detail = body.get("detail") if isinstance(body, dict) else None
    if isinstance(detail, list):  # FastAPI's own validation shape
        detail = "; ".join(str(i.get("msg", i)) if isinstance(i, dict) else str(i) for i in detail)
    return (str(detail) if detail is not None else json.dumps(body)[:500]), body


class Client:
    """Talks to one mlpipe server; reuse one instance (it keeps connections open)."""

    def __init__(
        self,
        base_url: str = "http://127.0.0.1:8000",
        api_key: str | None = None,
        timeout: float = 5.0,
        *,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        api_key = api_key if api_key is not None else os.environ.get("MLPIPE_API_KEY")
        headers = {"Accept": "application/json"}
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        self._http = httpx.Client(
            base_url=self.base_url, headers=headers, timeout=timeout, transport=transport
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def _request(
        self,
        method: str,
        path: str,
        *,
        body: Mapping[str, Any] | None = None,
        params: Mapping[str, Any] | None = None,
    ) -> Any:
        content = None
        headers = {}
        if body is not None:
            content = json.dumps(body, default=_jsonable)
            headers["Content-Type"] = "application/json"
        query = {k: v for k, v in (params or {}).items() if v is not None}
        try:
            response = self._http.request(method, path, content=content, params=query, headers=headers)
        except httpx.TransportError as exc:
            raise ClientError(None, f"cannot reach mlpipe at {self.base_url}: {exc}") from exc
        if response.is_error:
            detail, payload = _detail(response)
            raise ClientError(response.status_code, detail, payload)
        if not response.content:
            return None
        try:
            return response.json()
        except ValueError as exc:
            got = response.text[:200]
            raise ClientError(response.status_code, f"expected JSON from {path}, got: {got}") from exc

    @staticmethod
    def _prediction_body(
        symbol: str, candles: Sequence[Any] | None, features: Mapping[str, Any] | None
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"symbol": symbol}
        if candles is not None:
            body["candles"] = candles
        if features is not None:
            body["features"] = features
        return body

    # predictions (predict key)
    def predict(
        self,
        model_or_kind: str,
        symbol: str,
        candles: Sequence[Any] | None = None,
        features: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Ask a model (by name) or a kind's champion (`direction`, `risk`...) for a prediction.

        Without `candles` or `features` the server uses its latest stored candles for `symbol`.
        """
        return self._request(
            "POST", f"/predict/{model_or_kind}", body=self._prediction_body(symbol, candles, features)
        )

    def predict_many(self, model_or_kind: str, symbols: Sequence[str]) -> list[dict[str, Any]]:
        """One prediction per symbol (latest stored candles), in order, in one call (at most 100 symbols).

        A symbol the server cannot answer comes back as `{"symbol", "status", "error"}` in its place; the
        others still answer.
        """
        body = {"symbols": list(symbols)}
        return self._request("POST", f"/predict/{model_or_kind}", body=body)["predictions"]

    def stream(
        self,
        model_or_kind: str,
        symbols: Sequence[str],
        last_event_id: str | None = None,
        *,
        reconnect: bool = True,
        read_timeout: float = 60.0,
    ) -> Iterator[dict[str, Any]]:
        """Each new answer as the server pushes it when a candle closes (GET /stream/predictions):
        `{"event": "prediction" | "error", "id": ..., "data": {...}}`, oldest first.

        After a dropped connection it reconnects with `Last-Event-ID`, so no answer is missed; pass the last
        id you handled as `last_event_id` to resume a stream of an earlier run. The server pings every 15 s,
        so a silence longer than `read_timeout` is a dead connection.
        """
        from httpx_sse import connect_sse  # only streams need it

        params = {"model": model_or_kind, "symbols": ",".join(symbols)}
        timeout = httpx.Timeout(self._http.timeout.connect, read=read_timeout)
        while True:
            headers = {"Accept": "text/event-stream"}
            if last_event_id:
                headers["Last-Event-ID"] = last_event_id
            try:
                with connect_sse(
                    self._http, "GET", "/stream/predictions", params=params, headers=headers, timeout=timeout
                ) as source:
                    if source.response.is_error:
                        source.response.read()
                        detail, payload = _detail(source.response)
                        raise ClientError(source.response.status_code, detail, payload)
                    for sse in source.iter_sse():
                        if sse.event not in ("prediction", "error"):
                            continue
                        if sse.id:
                            last_event_id = sse.id
                        yield {"event": sse.event, "id": sse.id or None, "data": sse.json()}
            except httpx.TransportError as exc:
                if not reconnect:
                    raise ClientError(None, f"the stream from {self.base_url} broke: {exc}") from exc
                time.sleep(1.0)
                continue
            if not reconnect:
                return

    def ensemble_predict(
        self,
        ensemble_id: int | str,
        symbol: str,
        candles: Sequence[Any] | None = None,
        features: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """The ensemble's blended answer and each member's."""
        return self._request(
            "POST", f"/ensemble/{ensemble_id}/predict", body=self._prediction_body(symbol, candles, features)
        )

    def features(self, symbol: str, names: Sequence[str], timeframe: str = "1m", bars: int = 1) -> list[dict]:
        """The newest `bars` rows of the named features of `symbol` (e.g. `["rsi_14"]` on `"5m"`)."""
        params = {"names": ",".join(names), "timeframe": timeframe, "bars": bars}
        return self._request("GET", f"/features/{symbol}", params=params)["rows"]

    # models
    def models(self, status: str | None = None, kind: str | None = None) -> Any:
        return self._request("GET", "/models", params={"status": status, "kind": kind})

    def model(self, name: str) -> dict[str, Any]:
        return self._request("GET", f"/models/{name}")

    def set_status(self, name: str, status: str) -> dict[str, Any]:
        """Activate or archive a model (operator key)."""
        return self._request("PATCH", f"/models/{name}", body={"status": status})

    # ensembles
    def create_ensemble(
        self,
        members: Sequence[str],
        method: str = "weighted_avg",
        weights: Sequence[float] | None = None,
        name: str | None = None,
        **extra: Any,
    ) -> dict[str, Any]:
        """Create an ensemble of models (operator key); `extra` passes further fields of the server's body."""
        body: dict[str, Any] = {"models": list(members), "method": method, **extra}  # the seed's word
        if weights is not None:
            body["weights"] = list(weights)
        if name is not None:
            body["name"] = name
        return self._request("POST", "/ensembles", body=body)

    def ensembles(self) -> Any:
        return self._request("GET", "/ensembles")

    def ensemble(self, ensemble_id: int | str) -> dict[str, Any]:
        return self._request("GET", f"/ensembles/{ensemble_id}")

    def backtest_ensemble(self, ensemble_id: int | str) -> dict[str, Any]:
        """Score the ensemble beside each member on the same holdout (operator key)."""
        return self._request("POST", f"/ensembles/{ensemble_id}/backtest")

    # cycles
    def force_cycle(
        self, wait: bool = False, timeout: float = 3600.0, poll: float = 2.0, **options: Any
    ) -> dict[str, Any]:
        """Start a cycle now (operator key); with `wait`, poll it until it has finished.

        `options` go in the request body (e.g. `window_days`, `symbols`). Returns the server's 202 answer
        (with the cycle `id`), or the finished cycle when waiting. A cycle already running answers 409,
        raised as ClientError whose `body["id"]` names the running cycle.
        """
        started = self._request("POST", "/cycles", body=options or None)
        if not wait:
            return started
        cycle_id = started["id"]
        deadline = time.monotonic() + timeout
        while True:
            cycle = self.cycle(cycle_id)
            state = str(cycle.get("status", "")).lower()
            if state not in CYCLE_RUNNING_STATES:
                return cycle
            if time.monotonic() >= deadline:
                raise ClientError(None, f"cycle {cycle_id} is still {state} after {timeout:g} s", cycle)
            time.sleep(min(poll, max(0.0, deadline - time.monotonic())))

    def cycle(self, cycle_id: int | str) -> dict[str, Any]:
        return self._request("GET", f"/cycles/{cycle_id}")

    def cycles(self, limit: int | None = None) -> Any:
        return self._request("GET", "/cycles", params={"limit": limit})

    # service
    def health(self) -> dict[str, Any]:
        return self._request("GET", "/health")

    def ready(self) -> dict[str, Any]:
        """Readiness (database, Redis, models loaded); a server not ready answers 503 (ClientError)."""
        return self._request("GET", "/ready")
