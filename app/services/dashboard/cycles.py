"""The Cycles page: history and outcomes, where each cycle's time went (stages and jobs on one timeline),
failures with their reasons. A live cycle's view is polled by the page until it ends."""

from __future__ import annotations

import time
from typing import Any

from sqlmodel import select

from app.core.db import session_scope
from app.services.cycle import get_cycle, list_cycles
from app.services.cycle.rows import LIVE_STATUSES
from app.services.dashboard.common import iso
from app.tables.cycles import Cycle

HISTORY = 60  # a month of two cycles a day
_SUMMARY_COLUMNS = (
    Cycle.id,
    Cycle.status,
    Cycle.trigger,
    Cycle.stage,
    Cycle.progress,
    Cycle.timings,
    Cycle.errors,
    Cycle.created_ts,
    Cycle.started_ts,
    Cycle.finished_ts,
)


def newest_cycles(limit: int = HISTORY) -> list[Any]:
    """The newest cycles, without their (large) `results` column; lost live cycles marked interrupted."""
    list_cycles(1)  # runs the recovery that marks cycles nothing can carry on any more
    with session_scope() as session:
        stmt = select(*_SUMMARY_COLUMNS).order_by(Cycle.created_ts.desc()).limit(limit)  # type: ignore[attr-defined]
        return list(session.exec(stmt).all())


def _duration(cycle: Any) -> float | None:
    total = (cycle.timings or {}).get("total")
    if total is not None:
        return float(total)
    started = (cycle.timings or {}).get("started_at")
    if started is not None and cycle.status in LIVE_STATUSES:
        return round(time.time() - float(started), 3)
    if cycle.started_ts is not None and cycle.finished_ts is not None:
        return (cycle.finished_ts - cycle.started_ts).total_seconds()
    return None


def cycle_summary(cycle: Any) -> dict[str, Any]:
    progress = cycle.progress or {}
    states = [p.get("state") for p in progress.values()]
    errors = [e for e in (cycle.errors or []) if e.get("level", "error") == "error"]
    return {
        "id": cycle.id,
        "status": cycle.status,
        "trigger": cycle.trigger,
        "stage": cycle.stage,
        "created_ts": iso(cycle.created_ts),
        "finished_ts": iso(cycle.finished_ts),
        "seconds": _duration(cycle),
        "built": sum(1 for s in states if s == "succeeded"),
        "failed": sum(1 for s in states if s == "failed"),
        "jobs": len(progress),
        "errors": len(errors),
        "first_error": errors[0].get("message") if errors else None,
        "live": cycle.status in LIVE_STATUSES,
    }


def timeline(cycle: Any) -> dict[str, Any]:
    """Seconds from the cycle's start: one bar per stage (until the next one began) and per job."""
    timings = cycle.timings or {}
    origin = float(timings.get("queued_at") or timings.get("started_at") or cycle.created_ts.timestamp())
    if "total" in timings and "started_at" in timings:
        end = float(timings["started_at"]) + float(timings["total"])
    else:
        end = cycle.finished_ts.timestamp() if cycle.finished_ts else time.time()
    starts = sorted(
        (float(info["started_at"]), name)
        for name, info in (timings.get("stages") or {}).items()
        if isinstance(info, dict) and "started_at" in info
    )
    stages = []
    for i, (start, name) in enumerate(starts):
        stop = starts[i + 1][0] if i + 1 < len(starts) else end
        stages.append(
            {"name": name, "start": round(start - origin, 3), "end": round(max(stop, start) - origin, 3)}
        )
    jobs = []
    for label, info in (timings.get("jobs") or {}).items():
        if not isinstance(info, dict) or "ended_at" not in info:
            continue
        stop, seconds = float(info["ended_at"]), float(info.get("seconds") or 0.0)
        jobs.append(
            {
                "name": label,
                "start": round(stop - seconds - origin, 3),
                "end": round(stop - origin, 3),
                "cpu_seconds": info.get("cpu_seconds"),
            }
        )
    jobs.sort(key=lambda j: j["start"])
    return {"stages": stages, "jobs": jobs, "now": round(end - origin, 3)}


def _progress_rows(cycle: Any) -> list[dict[str, Any]]:
    rows = []
    for name, entry in (cycle.progress or {}).items():
        rows.append(
            {
                "definition": name,
                "stage": entry.get("stage", "build"),
                "state": entry.get("state"),
                "kind": entry.get("kind"),
                "model": entry.get("model") or entry.get("new_model"),
                "score": entry.get("score"),
                "seconds": entry.get("seconds"),
                "outcome": entry.get("outcome"),
                "error": entry.get("error"),
            }
        )
    return rows


def _decisions(results: dict[str, Any]) -> dict[str, Any]:
    ranking = results.get("ranking") or {}
    drift = results.get("drift") or {}
    return {
        "champions": ranking.get("champions") or {},
        "archived": ranking.get("archived") or {},
        "flagged": sorted(name for name, d in drift.items() if isinstance(d, dict) and d.get("flagged")),
        "window": results.get("window"),
        "ingest": results.get("ingest"),
    }


def cycle_detail(cycle_id: str) -> dict[str, Any]:
    """Everything about one cycle the page draws; also what the page polls while the cycle is live."""
    cycle = get_cycle(cycle_id)
    return {
        **cycle_summary(cycle),
        "started_ts": iso(cycle.started_ts),
        "timeline": timeline(cycle),
        "progress": _progress_rows(cycle),
        "errors_list": list(cycle.errors or []),
        "decisions": _decisions(cycle.results or {}),
    }


def cycles_page(selected: str | None = None) -> dict[str, Any]:
    history = [cycle_summary(c) for c in newest_cycles()]
    chosen = (
        selected
        or next((c["id"] for c in history if c["live"]), None)
        or (history[0]["id"] if history else None)
    )
    return {"history": history, "selected": cycle_detail(chosen) if chosen else None}
