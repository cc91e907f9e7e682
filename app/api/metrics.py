"""The middleware that times every HTTP request by route template (the counters are in app.core.metrics)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from app.core.metrics import HTTP_REQUEST_SECONDS

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})
UNMATCHED_ROUTE = "unmatched"


def _route_template(scope: Scope) -> str:
    route: Any = scope.get("route")
    if route is None:
        return UNMATCHED_ROUTE
    return getattr(route, "path_format", None) or getattr(route, "path", None) or UNMATCHED_ROUTE


class MetricsMiddleware:
    """Times every HTTP request by its route template (`/predict/{model}`, never the raw path).

    A pure ASGI middleware: BaseHTTPMiddleware would add a task and a stream per request.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status_code = 500

        async def send_and_note_status(message: Message) -> None:
            nonlocal status_code
            if message["type"] == "http.response.start":
                status_code = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_note_status)
        finally:
            method = scope["method"] if scope["method"] in _METHODS else "other"
            HTTP_REQUEST_SECONDS.labels(method, _route_template(scope), str(status_code)).observe(
                time.perf_counter() - start
            )
