"""Scores of what was served, pooled over consecutive periods (a replay's out-of-sample record).

Pure: `RowScores` of the models that served each period (app.ml.evaluation.row_scores) are pooled into
one record per kind and policy, whose skill and block-bootstrap interval come from
`evaluation.skill_estimate`, like every other skill of the project. Each row keeps its own model's
strongest baseline loss, so the pooled skill is "better than the strongest naive answer of the model that
was serving", period by period; `against_each` pools them against one baseline at a time instead, and
`strongest` picks the baseline that was hardest to beat over the whole record (one choice, not one per
period: the best of several baselines chosen anew on each period's scored rows would be a bar raised by
noise, which a forecaster identical to one of the baselines fails).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from app.ml import losses
from app.ml.evaluation import RowScores, Scored


def pool(name: str, parts: Sequence[RowScores]) -> RowScores | None:
    """The rows of several periods as one record, in time order (None when there is none)."""
    parts = [p for p in parts if len(p)]
    if not parts:
        return None
    baselines = sorted({p.baseline for p in parts})
    pooled = RowScores(
        name,
        np.concatenate([p.symbol for p in parts]),
        np.concatenate([p.ts_ms for p in parts]),
        np.concatenate([p.loss for p in parts]),
        np.concatenate([p.baseline_loss for p in parts]),
        "+".join(baselines),
        max(p.horizon for p in parts),
        min(p.bar_ms for p in parts),
        parts[0].root,
    )
    return pooled.subset(np.argsort(pooled.ts_ms, kind="stable"))


def against_each(name: str, parts: Sequence[tuple[Scored, int, int]]) -> dict[str, RowScores]:
    """baseline -> the pooled rows of `parts` (scored period, horizon, bar ms) against that baseline, for
    every baseline all the periods have (empty when there is no period or no common baseline)."""
    if not parts:
        return {}
    common = set.intersection(*(set(scored.baseline_losses) for scored, _, _ in parts))
    pooled = {b: pool(name, [scored.rows(name, h, bar, b) for scored, h, bar in parts])
              for b in sorted(common)}
    return {b: rows for b, rows in pooled.items() if rows is not None}


def strongest(pooled: dict[str, RowScores]) -> str:
    """The baseline with the lowest total loss over the whole pooled record."""
    return min(pooled, key=lambda b: (float(pooled[b].baseline_loss.sum()), b))


def cumulative_skill(rows: RowScores, points: int = 200) -> tuple[list[int], list[float]]:
    """Skill of the rows up to each time (at most `points` evenly spaced times): the curve a plot draws."""
    if not len(rows):
        return [], []
    order = np.argsort(rows.ts_ms, kind="stable")
    loss, base = np.cumsum(rows.loss[order]), np.cumsum(rows.baseline_loss[order])
    picks = np.unique(np.linspace(0, len(order) - 1, min(points, len(order))).astype(int))
    skill = losses.skill_from_totals(loss[picks], base[picks], rows.root)
    return [int(t) for t in rows.ts_ms[order][picks]], [float(s) for s in skill]
