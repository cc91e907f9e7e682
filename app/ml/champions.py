"""Each kind's champion after a cycle's builds, decided on paired tests (DESIGN 6). Pure: models and
candles in, one `KindPlan` per kind out; the rank stage applies them (app.services.cycle.rank).

Per kind:
1. The serving champion's definition has a fresh fit this cycle: it replaces the champion unless it is
   significantly worse on the rows neither trained on (`lifecycle.refresh_verdict`); the survivor is the
   defender. Without a fresh fit the serving champion defends (unless it would expire first).
2. This cycle's fresh fits of the kind's other definitions are the challengers; one takes the place only
   when better than the defender at 5%, Holm-corrected (`lifecycle.champion_decision`).
3. A kind with no champion yet (or whose champion has no fresh fit and would expire) starts from its first
   declared definition among the fresh fits, and the others challenge it on the same terms as in 2.
   Starting from the best point estimate instead would be a decision on noise, and it would stick: the
   next cycles defend it.

Every contender is scored (`evaluation.row_scores`) on the rows of `candles` it never trained on; each
paired test uses the rows both sides share, and adds the between-fit variance of the two definitions'
walk-forward folds (`comparison.between_fits`: aligned folds for two fits of this cycle's window).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pandas as pd

from app.ml import lifecycle
from app.ml.comparison import between_fits, paired_test
from app.ml.dataset import build_dataset
from app.ml.evaluation import RowScores, row_scores
from app.ml.lifecycle import ChampionDecision, RetrainVerdict
from app.ml.validation import unseen

if TYPE_CHECKING:
    from app.ml.base import BaseModel


@dataclass(frozen=True)
class Contender:
    name: str
    family: str
    kind: str
    model: BaseModel
    fresh: bool  # fitted by this cycle on the newest window
    score: float | None
    age_hours: float


@dataclass(frozen=True)
class KindPlan:
    kind: str
    previous: str | None  # the champion serving before this cycle
    refresh: RetrainVerdict | None  # its definition's fresh fit against it
    decision: ChampionDecision

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "previous": self.previous,
                "refresh": None if self.refresh is None else self.refresh.as_dict(),
                "decision": self.decision.as_dict()}


def unseen_scores(model: BaseModel, candles: Mapping[str, pd.DataFrame], name: str) -> RowScores:
    """Per-row losses of `model` on the labelled rows of `candles` it never trained on."""
    ds = build_dataset(model, candles)
    return row_scores(model, ds.subset(unseen(model, ds)), name)


def plan_champions(
    contenders: Sequence[Contender],
    serving: Mapping[str, str],
    candles: Mapping[str, Mapping[str, pd.DataFrame]],
    *,
    expiry_hours: float,
    cycle_hours: float,
    declared: Sequence[str] = (),
    alpha: float = lifecycle.ALPHA,
) -> dict[str, KindPlan]:
    """kind -> its plan. `serving` maps kind -> the champion serving now (it must be among contenders);
    `candles` maps timeframe -> symbol -> candles covering the newest unseen rows (plus warm-up);
    `declared`: the definitions' names (families) in the order the operator declared them."""
    by_name = {c.name: c for c in contenders}
    cache: dict[str, RowScores] = {}

    def between(a: Contender, b: Contender):  # noqa: ANN202 - a comparison.Between
        folds = [(c.model.performance_ or {}).get("walk_forward") for c in (a, b)]
        return between_fits(folds[0], folds[1], aligned=a.fresh and b.fresh)

    def scores(name: str) -> RowScores:
        if name not in cache:
            model = by_name[name].model
            cache[name] = unseen_scores(model, candles[model.timeframe], name)
        return cache[name]

    plans = {}
    for kind in sorted({c.kind for c in contenders}):
        fresh = _newest_per_family([c for c in contenders if c.kind == kind and c.fresh])
        previous = by_name.get(serving.get(kind, ""))
        defender, refresh = None, None
        if previous is not None:
            sibling = next((c for c in fresh if c.family == previous.family and c.name != previous.name),
                           None)
            defender = previous
            if sibling is not None:
                refresh = lifecycle.refresh_verdict(
                    paired_test(scores(previous.name), scores(sibling.name), "b_worse",
                                between(previous, sibling)),
                    previous_age_hours=previous.age_hours, expiry_hours=expiry_hours, cycle_hours=cycle_hours,
                    alpha=alpha)
                defender = sibling if refresh.replace else previous
            elif previous.age_hours + cycle_hours >= expiry_hours and fresh:
                defender = _first_declared(fresh, declared)
                refresh = lifecycle.RetrainVerdict(
                    True, f"{previous.name} has no fresh fit and would pass MODEL_EXPIRY_HOURS "
                    f"({expiry_hours:g}) before the next cycle: the first declared fresh definition "
                    "defends", None, alpha)
        starting = defender is None
        if starting and fresh:
            defender = _first_declared(fresh, declared)
        challengers = [c for c in fresh if defender is None or c.family != defender.family]
        tests = [paired_test(scores(defender.name), scores(c.name), "b_better", between(defender, c))
                 for c in challengers] if defender is not None else []
        decision = lifecycle.champion_decision(kind, defender.name if defender else None, tests, alpha=alpha,
                                               starting=starting)
        plans[kind] = KindPlan(kind, previous.name if previous else None, refresh, decision)
    return plans


def _newest_per_family(contenders: Sequence[Contender]) -> list[Contender]:
    newest: dict[str, Contender] = {}
    for c in sorted(contenders, key=lambda c: c.age_hours, reverse=True):
        newest[c.family] = c  # the youngest fit of each definition wins
    return list(newest.values())


def _first_declared(contenders: Sequence[Contender], declared: Sequence[str]) -> Contender:
    """The contender whose definition the operator declared first (undeclared ones after, by name)."""
    order = {family: i for i, family in enumerate(declared)}
    return min(contenders, key=lambda c: (order.get(c.family, len(order)), c.family, c.name))
