"""The Serving page: predictions served per model (the busiest TOP_MODELS) and per kind over time, latency
percentiles, live accuracy per kind over time (whichever model served it).

Volumes and live accuracy come from the `predictions` table (one grouped scan over the chosen range);
latency percentiles from the Prometheus histograms this API process exports on /metrics (since it started;
summed over processes in multiprocess mode), interpolated within buckets as Prometheus'
`histogram_quantile` does.
"""

from __future__ import annotations

import math
import time
from collections import defaultdict
from typing import Any

from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import case, func
from sqlmodel import select

from app.core.db import session_scope
from app.core.errors import BadInput
from app.core.metrics import render_metrics
from app.tables.predictions import Prediction

HOUR_MS = 3_600_000
RANGES = {
    "24h": (24 * HOUR_MS, HOUR_MS),
    "7d": (7 * 24 * HOUR_MS, 3 * HOUR_MS),
    "30d": (30 * 24 * HOUR_MS, 12 * HOUR_MS),
}
DEFAULT_RANGE = "7d"
TOP_MODELS = 15
QUANTILES = (0.5, 0.9, 0.99)
_SERVING_ROUTES = ("/predict/{model}", "/ensemble/{ensemble_id}/predict")


def _grouped(since_ms: int, bucket_ms: int) -> list[Any]:
    """(model, kind, bucket, served, scored, judged, right): one grouped scan of the range."""
    bucket = (Prediction.served_ts - Prediction.served_ts % bucket_ms).label("bucket")
    scored = func.sum(case((Prediction.scored.is_(True), 1), else_=0))  # type: ignore[attr-defined]
    right = func.sum(case((Prediction.correct.is_(True), 1), else_=0))  # type: ignore[union-attr]
    stmt = (
        select(
            Prediction.model_name,
            Prediction.kind,
            bucket,
            func.count(),
            scored,
            func.count(Prediction.correct),
            right,
        )
        .where(Prediction.served_ts >= since_ms)
        .group_by(Prediction.model_name, Prediction.kind, bucket)
    )
    with session_scope() as session:
        return list(session.exec(stmt).all())


_COUNTS = ("served", "scored", "judged", "right")


def volumes(range_name: str = DEFAULT_RANGE, now_ms: int | None = None) -> dict[str, Any]:
    """Per model and per kind over time: served, scored (outcome known), judged (right or wrong: direction,
    momentum and price; risk and volatility record an outcome without one) and right."""
    if range_name not in RANGES:
        raise BadInput(f"unknown range {range_name!r}; one of {', '.join(RANGES)}")
    span, bucket_ms = RANGES[range_name]
    now_ms = now_ms or int(time.time() * 1000)
    per_model: dict[str, dict[str, Any]] = {}
    per_kind: dict[str, dict[int, dict[str, int]]] = defaultdict(dict)
    for name, kind, ts, *counts in _grouped(now_ms - span, bucket_ms):
        entry = per_model.setdefault(name, {"model": name, "kind": kind, **dict.fromkeys(_COUNTS, 0)})
        point = per_kind[kind].setdefault(int(ts), dict.fromkeys(_COUNTS, 0))
        for key, value in zip(_COUNTS, counts, strict=True):
            entry[key] += int(value or 0)
            point[key] += int(value or 0)
    models = sorted(per_model.values(), key=lambda m: (-m["served"], m["model"]))
    for m in models:
        m["live_accuracy"] = m["right"] / m["judged"] if m["judged"] else None
    return {
        "range": range_name,
        "ranges": list(RANGES),
        "bucket_ms": bucket_ms,
        "since_ms": now_ms - span,
        "span_ms": span,
        "total": sum(m["served"] for m in models),
        "models": models[:TOP_MODELS],
        "other_models": {
            "count": max(0, len(models) - TOP_MODELS),
            "served": sum(m["served"] for m in models[TOP_MODELS:]),
        },
        "volume": {
            kind: [[ts, p["served"]] for ts, p in sorted(points.items())]
            for kind, points in sorted(per_kind.items())
        },
        "accuracy": {
            kind: [
                {"ts": ts, "accuracy": p["right"] / p["judged"], "n": p["judged"]}
                for ts, p in sorted(points.items())
                if p["judged"]
            ]
            for kind, points in sorted(per_kind.items())
            if any(p["judged"] for p in points.values())
        },
    }


def quantile(q: float, buckets: list[tuple[float, float]]) -> float | None:
    """`histogram_quantile`: linear within the bucket that holds rank q * count (cumulative buckets)."""
    buckets = sorted(buckets)
    if not buckets or buckets[-1][1] <= 0:
        return None
    rank = q * buckets[-1][1]
    lower_bound, lower_count = 0.0, 0.0
    for bound, count in buckets:
        if count >= rank:
            if math.isinf(bound):
                return lower_bound  # above the highest finite bucket: its bound is all we know
            inside = count - lower_count
            return lower_bound + (bound - lower_bound) * ((rank - lower_count) / inside if inside else 1.0)
        lower_bound, lower_count = bound, count
    return None


def _histograms(name: str, label: str, keep: Any) -> dict[str, dict[str, Any]]:
    body, _ = render_metrics()
    found: dict[str, dict[str, Any]] = {}
    for family in text_string_to_metric_families(body.decode()):
        if family.name != name:
            continue
        for s in family.samples:
            if not keep(s.labels):
                continue
            entry = found.setdefault(
                s.labels[label], {"buckets": defaultdict(float), "count": 0.0, "sum": 0.0}
            )
            if s.name.endswith("_bucket"):
                entry["buckets"][float(s.labels["le"])] += s.value
            elif s.name.endswith("_count"):
                entry["count"] += s.value
            elif s.name.endswith("_sum"):
                entry["sum"] += s.value
    return found


def _percentiles(found: dict[str, dict[str, Any]], key: str) -> list[dict[str, Any]]:
    rows = []
    for name, h in sorted(found.items()):
        if not h["count"]:
            continue
        buckets = list(h["buckets"].items())
        rows.append(
            {
                key: name,
                "count": int(h["count"]),
                "mean_ms": 1000 * h["sum"] / h["count"],
                **{f"p{round(q * 100)}_ms": _ms(quantile(q, buckets)) for q in QUANTILES},
            }
        )
    return rows


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(1000 * seconds, 3)


def latency() -> dict[str, Any]:
    models = _histograms("mlpipe_prediction_seconds", "model", lambda labels: "model" in labels)
    routes = _histograms(
        "mlpipe_http_request_seconds",
        "route",
        lambda labels: labels.get("route") in _SERVING_ROUTES and labels.get("status") == "200",
    )
    return {"models": _percentiles(models, "model"), "routes": _percentiles(routes, "route")}


def serving_page(range_name: str = DEFAULT_RANGE) -> dict[str, Any]:
    return {**volumes(range_name), "latency": latency()}
