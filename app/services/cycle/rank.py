"""The rank stage: score every candidate and active model and apply DESIGN 6 (see app.ml.ranking)."""

from __future__ import annotations

from typing import Any

from sqlmodel import select

from app.core.db import session_scope
from app.core.logging import get_logger
from app.ml.ranking import RANKED_STATUSES, ModelRanker, RankEntry, score_from_performance
from app.services.cycle.flow import set_stage
from app.services.cycle.plan import apply_plan
from app.services.cycle.rows import close_lost_jobs, read, update
from app.tables.models import ModelRecord

log = get_logger(__name__)


def rank(cycle_id: str) -> dict[str, Any]:
    """Promote the top models (champions first), archive the dropped and the surplus; record each decision."""
    update(cycle_id, lambda cycle: close_lost_jobs(cycle, stage="build"))
    applied = read(cycle_id).results.get("ranking")
    if applied is not None:  # a try that died after its commit already applied this cycle's ranking
        return applied
    set_stage(cycle_id, "rank")
    with session_scope() as session:
        stmt = select(ModelRecord).where(ModelRecord.status.in_(RANKED_STATUSES))  # type: ignore[attr-defined]
        records = list(session.exec(stmt).all())
    entries = [
        RankEntry(
            r.name,
            r.kind,
            r.status,
            r.score if r.score is not None else score_from_performance(r.performance),
            r.created_ts,
        )
        for r in records
    ]
    plan = ModelRanker().plan(entries)
    position = {name: i + 1 for i, (name, _) in enumerate(plan.order)}
    scores = dict(plan.order)
    previous = {r.name: r.status for r in records}
    changes: dict[str, tuple[str, str, dict[str, Any]]] = {}
    for name, reason in plan.archive.items():
        numbers = {"score": scores.get(name), "rank": position[name], "of": len(plan.order)}
        changes[name] = ("archived", reason, numbers)
    for name in plan.active:
        champion_of = next((k for k, v in plan.champions.items() if v == name), None)
        reason = (
            f"champion of {champion_of}" if champion_of else f"in the top {ModelRanker().max_active}"
        ) + (f": score {scores.get(name)}, rank {position[name]} of {len(plan.order)}")
        numbers = {
            "score": scores.get(name),
            "rank": position[name],
            "of": len(plan.order),
            "champion_of": champion_of,
        }
        if previous[name] != "active":
            changes[name] = ("active", reason, numbers)
    decisions = {
        name: {"from": previous[name], "to": status, "reason": reason, **numbers}
        for name, (status, reason, numbers) in changes.items()
    }
    summary = {
        "order": [[name, score] for name, score in plan.order],
        "champions": plan.champions,
        "active": plan.active,
        "archived": plan.archive,
        "candidates": plan.keep_candidate,
        "decisions": decisions,
    }
    # one transaction: every promotion, then every archive, and this summary; reloads after the commit
    apply_plan(cycle_id, changes, record=lambda c: c.results.__setitem__("ranking", summary))
    log.info("cycle ranked", cycle_id=cycle_id, active=plan.active, archived=list(plan.archive))
    return summary
