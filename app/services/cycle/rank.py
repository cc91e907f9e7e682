"""The rank stage: compute the plan (pure, app.ml.champions + app.ml.ranking), then apply it.

Each kind's champion is decided on paired tests on rows none of the contenders trained on (DESIGN 6):
the incumbent definition's fresh fit serves unless significantly worse, and a challenger definition takes
the place only when better at 5%. Then the active set and the pruning follow DESIGN 6's counts.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from croniter import croniter
from sqlmodel import select

from app.core.config import get_settings
from app.core.db import session_scope
from app.core.logging import get_logger
from app.ml.champions import Contender, KindPlan, plan_champions
from app.ml.ranking import RANKED_STATUSES, ModelRanker, RankEntry, score_from_performance, serving_champions
from app.services.cycle import data as cycle_data
from app.services.cycle import training as cycle_ml
from app.services.cycle.definitions import load_definitions
from app.services.cycle.flow import set_stage
from app.services.cycle.plan import apply_plan
from app.services.cycle.rows import close_lost_jobs, read, update
from app.services.models import load_model
from app.tables.models import ModelRecord

log = get_logger(__name__)


def cycle_hours() -> float:
    """Hours between two cycles of CYCLE_CRON (12 by default)."""
    start = datetime(2025, 1, 1, tzinfo=UTC)
    it = croniter(get_settings().cycle_cron, start)
    first, second = it.get_next(datetime), it.get_next(datetime)
    return (second - first) / timedelta(hours=1)


def _entries(records: list[ModelRecord]) -> list[RankEntry]:
    return [
        RankEntry(r.name, r.kind, r.status,
                  r.score if r.score is not None else score_from_performance(r.performance), r.created_ts,
                  r.family)
        for r in records
    ]


def lacking_market(model: Any, candles: dict[str, Any]) -> list[str]:
    """The market symbols a cross-asset model reads that the cycle has no candles of (empty: none lacking)."""
    return [s for s in getattr(model, "market_symbols_", ()) or () if s not in candles]


def decide_champions(
    cycle_id: str, records: list[ModelRecord], skipped: dict[str, str] | None = None
) -> dict[str, KindPlan]:
    """Load this cycle's fits and the serving champions, score them on the newest candles, decide (pure).

    A model whose market symbols (cross-asset features) the cycle has no candles of cannot be scored on
    the same rows as the others, nor served from them: it is left out (`skipped`: name -> why)."""
    cycle = read(cycle_id)
    serving = serving_champions(_entries(records))
    fresh = {r.name for r in records if (r.training or {}).get("cycle_id") == cycle_id}
    wanted = [r for r in records if r.name in fresh or r.name in serving.values()]
    now = datetime.now(UTC)
    as_of = cycle.options.get("as_of_ms")  # a replay step: ages on the replay's clock, from each fit's window
    contenders = []
    for r in wanted:
        try:
            model = load_model(r.name)
        except Exception as exc:  # noqa: BLE001 - a model that cannot load cannot serve; the others compete
            log.warning("rank: model not loaded", model=r.name, error=str(exc))
            continue
        end = (r.training or {}).get("window_end_ms")
        age = ((int(as_of) - int(end)) / 3_600_000 if as_of is not None and end is not None
               else (now - r.created_ts).total_seconds() / 3600)
        contenders.append(Contender(r.name, r.family, r.kind, model, r.name in fresh, r.score, age))
    if not contenders:
        return {}
    window, symbols = cycle.results["window"], cycle.results.get("symbols") or []
    start = min(int((c.model.training_ or {}).get("train_end_ms") or window["start_ms"]) for c in contenders
                if c.fresh) if fresh else window["start_ms"]
    models = [c.model for c in contenders]
    warm = max(cycle_ml.warmup_bars(m) for m in models)
    timeframes = {m.timeframe for m in models}
    candles = {tf: cycle_data.load_range(symbols, start, window["end_ms"], tf, warm) for tf in timeframes}
    kept = []
    for c in contenders:
        lacking = lacking_market(c.model, candles[c.model.timeframe])
        if lacking:
            why = f"reads the candles of {lacking} (cross-asset features), which this cycle lacks"
            log.warning("rank: model skipped", model=c.name, reason=why)
            if skipped is not None:
                skipped[c.name] = why
            continue
        kept.append(c)
    contenders = kept
    if not contenders:
        return {}
    loaded = {c.name for c in contenders}
    declared = [d["name"] for d in load_definitions(cycle.options)]
    return plan_champions(contenders, {k: v for k, v in serving.items() if v in loaded}, candles,
                          expiry_hours=get_settings().model_expiry_hours, cycle_hours=cycle_hours(),
                          declared=declared)


def rank(cycle_id: str) -> dict[str, Any]:
    """Decide champions on evidence, then activate, supersede and archive; record each decision."""
    update(cycle_id, lambda cycle: close_lost_jobs(cycle, stage="build"))
    applied = read(cycle_id).results.get("ranking")
    if applied is not None:  # a try that died after its commit already applied this cycle's ranking
        return applied
    set_stage(cycle_id, "rank")
    with session_scope() as session:
        stmt = select(ModelRecord).where(ModelRecord.status.in_(RANKED_STATUSES))  # type: ignore[attr-defined]
        records = list(session.exec(stmt).all())
    skipped: dict[str, str] = {}
    kind_plans = decide_champions(cycle_id, records, skipped)
    champions = {k: p.decision.champion for k, p in kind_plans.items() if p.decision.champion}
    plan = ModelRanker().plan(_entries(records), champions=champions)
    position = {name: i + 1 for i, (name, _) in enumerate(plan.order)}
    scores = dict(plan.order)
    previous = {r.name: r.status for r in records}
    kind_of = {r.name: r.kind for r in records}
    changes: dict[str, tuple[str, str, dict[str, Any]]] = {}
    events: list[tuple[str, str, str, dict[str, Any]]] = []

    def numbers_of(name: str) -> dict[str, Any]:
        numbers = {"score": scores.get(name), "rank": position[name], "of": len(plan.order)}
        kind_plan = kind_plans.get(kind_of[name])
        return numbers | ({"champion_decision": kind_plan.as_dict()} if kind_plan else {})

    for name in plan.active:
        champion_of = next((k for k, v in plan.champions.items() if v == name), None)
        reason = (f"champion of {champion_of}: {kind_plans[champion_of].decision.reason}"
                  if champion_of in kind_plans else
                  f"champion of {champion_of}" if champion_of else f"in the top {ModelRanker().max_active}")
        numbers = numbers_of(name) | {"champion_of": champion_of}
        if previous[name] != "active":
            changes[name] = ("active", reason, numbers)
        elif champion_of in kind_plans:
            events.append((name, "validated", f"stays {reason}", numbers))
    for status, chosen in (("superseded", plan.supersede), ("archived", plan.archive)):
        for name, why in chosen.items():
            changes[name] = (status, why, numbers_of(name))
    decisions = {
        name: {"from": previous[name], "to": status, "reason": reason, **numbers}
        for name, (status, reason, numbers) in changes.items()
    }
    summary = {
        "order": [[name, score] for name, score in plan.order],
        "champions": plan.champions,
        "active": plan.active,
        "archived": plan.archive,
        "superseded": plan.supersede,
        "candidates": plan.keep_candidate,
        "served_before": sorted(n for n, s in previous.items() if s == "active"),
        "champion_decisions": {k: p.as_dict() for k, p in kind_plans.items()},
        "skipped": skipped,
        "decisions": decisions,
    }
    # one transaction: every promotion, then every supersede and archive, the events and this summary;
    # API processes reload after the commit
    apply_plan(cycle_id, changes, record=lambda c: c.results.__setitem__("ranking", summary), events=events)
    log.info("cycle ranked", cycle_id=cycle_id, active=plan.active, archived=list(plan.archive),
             switched=[k for k, p in kind_plans.items() if p.decision.switched])
    return summary
