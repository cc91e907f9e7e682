"""Ranking (DESIGN 6): score = 100 x skill; at most 5 active, always each kind's champion; prune to 7.

Pure: takes plain entries (and the champions `app.ml.lifecycle.champion_decision` chose on paired
tests), returns a plan. The cycle's rank job applies the plan to the database, so the rules can be tested
(and explained) without a database, a store or a queue.

`/predict/<kind>` serves the active model of that kind that ranks first by (score, newer, name). A
champion kept on evidence may score below a challenger by noise, so an extra active place never goes to a
model that would outrank its kind's champion: what serves is always the champion the tests chose.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

MAX_ACTIVE = 5
MAX_KEPT = 7
ARCHIVE_BATCH = 2
RANKED_STATUSES = ("candidate", "active")


def score_from_performance(performance: Mapping[str, Any] | None) -> float | None:
    """100 x skill over the best naive baseline, or None when validation left no usable skill."""
    if not performance:
        return None
    skill = performance.get("skill")
    if skill is None or not isinstance(skill, int | float) or not math.isfinite(float(skill)):
        return None
    return round(100.0 * float(skill), 4)


@dataclass(frozen=True)
class RankEntry:
    """What the ranker needs to know about one model."""

    name: str
    kind: str
    status: str
    score: float | None
    created_ts: datetime | None = None
    family: str | None = None


@dataclass
class RankingPlan:
    """The outcome of one ranking: who is active, who is archived and why, and each kind's champion."""

    order: list[tuple[str, float | None]] = field(default_factory=list)  # best first
    champions: dict[str, str] = field(default_factory=dict)  # kind -> name
    active: list[str] = field(default_factory=list)
    archive: dict[str, str] = field(default_factory=dict)  # name -> reason
    supersede: dict[str, str] = field(default_factory=dict)  # name -> reason (replaced by its newer fit)
    keep_candidate: list[str] = field(default_factory=list)

    def status_of(self, name: str) -> str | None:
        if name in self.supersede:
            return "superseded"
        if name in self.archive:
            return "archived"
        if name in self.active:
            return "active"
        if name in self.keep_candidate:
            return "candidate"
        return None


def _sort_key(entry: RankEntry) -> tuple[float, float, str]:
    """Best first: higher score, then newer, then name (so equal scores rank deterministically)."""
    score = entry.score if entry.score is not None else -math.inf
    created = entry.created_ts.timestamp() if entry.created_ts is not None else 0.0
    return (-score, -created, entry.name)


def serving_champions(entries: Iterable[RankEntry]) -> dict[str, str]:
    """kind -> the active model `/predict/<kind>` serves now: the first active one by (score, newer, name)."""
    champions: dict[str, str] = {}
    for entry in sorted((e for e in entries if e.status == "active"), key=_sort_key):
        champions.setdefault(entry.kind, entry.name)
    return champions


class ModelRanker:
    """Applies DESIGN 6 to a set of models; `get_top_models`/`get_to_replace` keep the seed's calls."""

    def __init__(
        self, max_active: int = MAX_ACTIVE, max_kept: int = MAX_KEPT, archive_batch: int = ARCHIVE_BATCH
    ) -> None:
        if max_active < 1 or max_kept < max_active or archive_batch < 1:
            raise ValueError("need max_active >= 1, max_kept >= max_active and archive_batch >= 1")
        self.max_active = max_active
        self.max_kept = max_kept
        self.archive_batch = archive_batch
        self._last: RankingPlan | None = None

    def plan(self, entries: Iterable[RankEntry], champions: Mapping[str, str] | None = None) -> RankingPlan:
        """Rank candidates and active models (others are ignored) and decide every status.

        `champions` (kind -> name) are the champions chosen on evidence; a kind without one gets its best
        score. Champions are active first; the remaining active slots go to the best scores that do not
        outrank their kind's champion. An active model that falls out of the active set is superseded
        when a newer model of its family is active, else archived. Then, while more than `max_kept` are
        not archived, the lowest `archive_batch` non-active ones are archived; champions and active models
        never are.
        """
        ranked = sorted((e for e in entries if e.status in RANKED_STATUSES), key=_sort_key)
        names = {e.name for e in ranked}
        plan = RankingPlan(order=[(e.name, e.score) for e in ranked])
        for kind, name in (champions or {}).items():
            if name in names:
                plan.champions[kind] = name
        for entry in ranked:
            plan.champions.setdefault(entry.kind, entry.name)
        position = {e.name: i for i, e in enumerate(ranked)}
        champion_rows = [e for e in ranked if plan.champions[e.kind] == e.name]
        active = [e.name for e in champion_rows][: self.max_active]
        for entry in ranked:
            if len(active) >= self.max_active:
                break
            outranks_champion = position[entry.name] < position[plan.champions[entry.kind]]
            if entry.name not in active and not outranks_champion:
                active.append(entry.name)
        plan.active = [e.name for e in ranked if e.name in active]
        by_name = {e.name: e for e in ranked}
        for entry in ranked:
            if entry.status == "active" and entry.name not in active:
                newer = next((n for n in plan.active if entry.family and by_name[n].family == entry.family),
                             None)
                if newer is not None:
                    plan.supersede[entry.name] = f"replaced by {newer}, its definition's newer fit"
                else:
                    plan.archive[entry.name] = f"out of the top {self.max_active} active models"
        gone = set(plan.archive) | set(plan.supersede)
        spare = [e for e in ranked if e.name not in active and e.name not in gone]
        kept = len(active) + len(spare)
        while kept > self.max_kept and spare:
            batch = spare[-self.archive_batch :]
            spare = spare[: -self.archive_batch]
            for entry in batch:
                plan.archive[entry.name] = (
                    f"{kept} models not archived (> {self.max_kept}): among the lowest {self.archive_batch}"
                )
            kept -= len(batch)
        plan.keep_candidate = [e.name for e in spare]
        self._last = plan
        return plan

    def get_top_models(
        self, results: Mapping[str, Mapping[str, Any]], count: int = MAX_ACTIVE
    ) -> list[tuple[str, float]]:
        """The seed's call: the best `count` of `{name: validation metrics}` by score, best first."""
        scored = [(name, score_from_performance(metrics)) for name, metrics in results.items()]
        ordered = sorted(((n, s) for n, s in scored if s is not None), key=lambda item: (-item[1], item[0]))
        self._last = RankingPlan(order=list(ordered))
        return ordered[:count]

    def get_to_replace(self, count: int = ARCHIVE_BATCH) -> list[str]:
        """The seed's call: the lowest `count` of the last ranking, when it held more than `max_kept`."""
        if self._last is None or len(self._last.order) <= self.max_kept:
            return []
        return [name for name, _ in self._last.order[-count:]]
