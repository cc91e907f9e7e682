"""Pieces every dashboard page uses: a model's skill with its interval and verdict, ages, timestamps."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from app.core.config import get_settings

KINDS = ("direction", "risk", "price", "momentum", "volatility")
CLASSIFIER_KINDS = ("direction", "momentum")


def now() -> datetime:
    return datetime.now(UTC)


def iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def ms_iso(ms: int | float | None) -> str | None:
    return datetime.fromtimestamp(float(ms) / 1000, UTC).isoformat() if ms is not None else None


def _pair(value: Any) -> list[float] | None:
    if isinstance(value, list | tuple) and len(value) == 2 and all(isinstance(v, int | float) for v in value):
        return [float(value[0]), float(value[1])]
    return None


def skill_summary(performance: dict[str, Any]) -> dict[str, Any]:
    """Skill against the strongest baseline, with its 95% interval when the model recorded one.

    verdict: `beats` (lower end above 0, DESIGN 5), `does_not_beat` (the interval reaches 0, or, without an
    interval, the point estimate is not above 0), `no_interval` (above 0 on the point estimate only: no
    interval was recorded, so it is not called a win), `unknown` (no skill recorded).
    """
    skill = performance.get("skill")
    interval = _pair(performance.get("skill_interval"))
    beats = performance.get("beats_baseline")
    if skill is None:
        verdict = "unknown"
    elif isinstance(beats, bool):
        verdict = "beats" if beats else "does_not_beat"
    elif interval is not None:
        verdict = "beats" if interval[0] > 0 else "does_not_beat"
    else:
        verdict = "does_not_beat" if float(skill) <= 0 else "no_interval"
    return {
        "skill": None if skill is None else float(skill),
        "interval": interval,
        "verdict": verdict,
        "baseline": performance.get("baseline"),
    }


VERDICT_TEXT = {
    "beats": "beats its baseline",
    "does_not_beat": "does not beat its baseline",
    "no_interval": "above its baseline on the point estimate; no interval recorded",
    "unknown": "no skill recorded",
}


def intervals(performance: dict[str, Any]) -> dict[str, list[float]]:
    """`performance.intervals` {metric: [lo, hi]} when the model recorded them."""
    found = performance.get("intervals") or {}
    return (
        {k: pair for k, v in found.items() if (pair := _pair(v)) is not None}
        if isinstance(found, dict)
        else {}
    )


def age(created_ts: datetime | None) -> dict[str, Any]:
    """Hours since the model was trained, against MODEL_EXPIRY_HOURS (after which it is not served)."""
    expiry = float(get_settings().model_expiry_hours)
    if created_ts is None:
        return {"hours": None, "expiry_hours": expiry, "fraction": None, "expired": False}
    hours = (now() - created_ts).total_seconds() / 3600
    return {
        "hours": round(hours, 2),
        "expiry_hours": expiry,
        "fraction": round(hours / expiry, 4),
        "expired": hours > expiry,
    }


def validation_accuracy(kind: str, performance: dict[str, Any]) -> float | None:
    """The holdout accuracy that live accuracy is compared with (classifiers; a regressor has none)."""
    value = performance.get("accuracy") if kind in CLASSIFIER_KINDS else performance.get("direction_accuracy")
    return None if value is None else float(value)


def event_view(event: Any) -> dict[str, Any]:
    numbers = dict(event.numbers or {})
    test = {
        k: numbers[k] for k in ("test", "statistic", "p_value", "n_effective", "interval") if k in numbers
    }
    return {
        "id": event.id,
        "model": event.model_name,
        "event": event.event,
        "reason": event.reason,
        "cycle_id": event.cycle_id,
        "ts": iso(event.created_ts),
        "test": test,
    }
