"""The Overview page: per kind, the champion served (skill and interval against its baseline, age against
expiry, live against validation accuracy); the last cycle; the newest model events."""

from __future__ import annotations

from typing import Any

from sqlmodel import select

from app.core.db import session_scope
from app.services.dashboard import common
from app.services.dashboard.cycles import cycle_summary, newest_cycles
from app.services.models import list_models
from app.store.cache import get_cache
from app.tables.models import ModelEvent

NEWEST_EVENTS = 15


def champion_row(record: Any) -> dict[str, Any]:
    live = record.live_performance or {}
    return {
        "kind": record.kind,
        "name": record.name,
        "type": record.model_type,
        "version": record.version,
        "score": record.score,
        **common.skill_summary(record.performance or {}),
        "age": common.age(record.created_ts),
        "validation_accuracy": common.validation_accuracy(record.kind, record.performance or {}),
        "live_accuracy": live.get("accuracy"),
        "live_n": int(live.get("trades_evaluated") or 0),
        "data_source": record.data_source,
    }


def newest_events(limit: int = NEWEST_EVENTS) -> list[dict[str, Any]]:
    with session_scope() as session:
        stmt = select(ModelEvent).order_by(ModelEvent.created_ts.desc(), ModelEvent.id.desc()).limit(limit)
        rows = session.exec(stmt).all()
        return [common.event_view(e) for e in rows]


def overview() -> dict[str, Any]:
    """Champions are the ones this API process serves (its model cache), read back from their rows."""
    champions = get_cache().snapshot.champions
    by_name = {r.name: r for r in list_models(status="active")}
    kinds = []
    for kind in common.KINDS:
        record = by_name.get(champions.get(kind, ""))
        kinds.append(champion_row(record) if record is not None else {"kind": kind, "name": None})
    cycles = newest_cycles(limit=5)
    return {
        "kinds": kinds,
        "cycles": [cycle_summary(c) for c in cycles],
        "events": newest_events(),
        "expiry_hours": common.age(None)["expiry_hours"],
    }
