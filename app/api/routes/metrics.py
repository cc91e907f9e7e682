"""Prometheus scrape endpoint."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import PlainTextResponse

from app.core.metrics import render_metrics

router = APIRouter(tags=["health"])


@router.get(
    "/metrics",
    response_class=PlainTextResponse,
    responses={200: {
        "description": "Metrics in the Prometheus text exposition format.",
        "content": {"text/plain": {"example": (
            "# HELP mlpipe_predictions_total Predictions served, by model name and kind.\n"
            "# TYPE mlpipe_predictions_total counter\n"
            'mlpipe_predictions_total{model="direction_xgb_001",kind="direction"} 42.0\n'
        )}},
    }},
)
def metrics(request: Request) -> Response:
    """Prometheus metrics: request latency per route, predictions, model loads and reloads, cycle outcomes."""
    body, content_type = render_metrics(request.headers.get("accept"))
    return Response(body, media_type=content_type)
