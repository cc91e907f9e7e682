"""The cycle's decisions (DESIGN 6) as pure rules: numbers in, a plain verdict with its numbers out.

A decision taken on noise is a defect, so each rule acts only on a test that says so:

- `refresh_verdict(test, ...)`: the incumbent definition's fresh fit (this cycle's, on the newest window)
  replaces the serving model unless it is significantly worse on the rows neither trained on (one-sided
  paired test, 5%); the fresher fit wins ties. The old one stays only while it would not expire before
  the next cycle, so no champion ages past MODEL_EXPIRY_HOURS while cycles succeed. A flagged model's
  retrained version is judged by the same rule (`retrain_verdict`).
- `champion_decision(kind, defender, challengers)`: a challenger definition takes the champion's place
  only when it is better than the defender at 5% (one-sided paired tests, Holm-corrected over the
  challengers, so several challengers do not multiply the false switches); otherwise the defender keeps
  it.
- `drift_verdict(validation, live)`: flagged only when the skill on unseen newest rows is below the
  validation skill by more than 0.05 AND the drop is significant at 5% (one-sided t test of the drop).
  Its variance is the live skill's block-bootstrap variance plus how far another period's skill
  normally is from the validation period's: the larger of the validation skill's standard error and
  the spread of the definition's 12-hour skills out of sample (its walk-forward folds' test rows cut
  into 12-hour periods, `period_skill_sd`). A skill moves from day to day with the market's regime (a
  volatility model against HAR-RV most of all); only a drop beyond that is drift. Degrees of freedom:
  Welch-Satterthwaite from the periods (n - 1) and the live bootstrap blocks.
- `tuning_verdict(validation, retrained)`: the same test for a retrained model on the fresh rows: if
  retraining did not bring the skill back, the definition needs tuning (DESIGN 10).

Every verdict's `as_dict()` holds the test, statistic, p-value or interval, effective n and row range.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from scipy import stats

from app.ml.comparison import PairedTest
from app.ml.evaluation import SkillEstimate

ALPHA = 0.05
DRIFT_THRESHOLD = 0.05
Z95 = 1.959963984540054


@dataclass(frozen=True)
class RetrainVerdict:
    """Does the newer fit of a definition replace the model serving now?"""

    replace: bool
    reason: str
    test: dict[str, Any] | None
    alpha: float = ALPHA

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def retrain_verdict(test: PairedTest | None, alpha: float = ALPHA) -> RetrainVerdict:
    """New (B) replaces old (A) unless B is worse at `alpha` (test with alternative 'b_worse')."""
    if test is None or test.n == 0:
        return RetrainVerdict(True, "no rows both models never trained on: the fresher fit serves", None,
                              alpha)
    worse = test.alternative == "b_worse" and test.p_value < alpha
    numbers = (f"skill {_fmt(test.skill_b)} (new) vs {_fmt(test.skill_a)} (old) on {test.n} rows, "
               f"DM t = {test.statistic:+.2f}, p = {test.p_value:.3f} (one-sided, new worse)")
    if worse:
        return RetrainVerdict(False, f"the new fit is significantly worse: {numbers}", test.as_dict(), alpha)
    return RetrainVerdict(True, f"not significantly worse, the fresher fit serves: {numbers}", test.as_dict(),
                          alpha)


def refresh_verdict(
    test: PairedTest | None,
    *,
    previous_age_hours: float,
    expiry_hours: float,
    cycle_hours: float,
    alpha: float = ALPHA,
) -> RetrainVerdict:
    """`retrain_verdict`, except that a previous model about to expire is replaced whatever the test says."""
    verdict = retrain_verdict(test, alpha)
    if not verdict.replace and previous_age_hours + cycle_hours >= expiry_hours:
        return RetrainVerdict(True, f"{verdict.reason}; but the serving model is {previous_age_hours:.1f} h "
                              f"old and would pass MODEL_EXPIRY_HOURS ({expiry_hours:g}) before the next "
                              "cycle: the fresh fit serves", verdict.test, alpha)
    return verdict


@dataclass(frozen=True)
class ChampionDecision:
    """Who serves `/predict/<kind>` after this cycle, and the tests that decided it."""

    kind: str
    champion: str | None
    defender: str | None
    switched: bool  # a challenger definition took the place
    reason: str
    tests: list[dict[str, Any]] = field(default_factory=list)
    alpha: float = ALPHA
    correction: str = "holm"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def champion_decision(
    kind: str,
    defender: str | None,
    challengers: Sequence[PairedTest],
    *,
    alpha: float = ALPHA,
    starting: bool = False,
) -> ChampionDecision:
    """A challenger replaces `defender` only if better at `alpha` (Holm over the challengers).

    Each test has A = the defender and B = one challenger, alternative 'b_better'. `starting`: the kind has
    no champion yet, and `defender` is its first declared definition (the operator's default), which starts
    on the same terms: a choice on the best point estimate would be a decision on noise that then sticks.
    """
    if defender is None:
        return ChampionDecision(kind, None, None, False, "no fresh model of this kind to serve",
                                [t.as_dict() for t in challengers], alpha)
    prefix = f"no champion yet: {defender}, the first declared definition, starts; " if starting else ""
    ordered = sorted(challengers, key=lambda t: t.p_value)
    winners: list[PairedTest] = []
    m = len(ordered)
    for i, test in enumerate(ordered):
        if test.n == 0 or test.p_value >= alpha / (m - i):
            break
        winners.append(test)
    tests = [t.as_dict() for t in challengers]
    if not winners:
        best = ordered[0] if ordered else None
        detail = "no challenger" if best is None else (
            f"best challenger {best.b}: skill {_fmt(best.skill_b)} vs {_fmt(best.skill_a)}, "
            f"DM t = {best.statistic:+.2f}, p = {best.p_value:.3f} (Holm threshold {alpha / m:.3f})")
        return ChampionDecision(kind, defender, defender, False,
                                f"{prefix}{defender} keeps the place: {detail}", tests, alpha)
    chosen = max(winners, key=lambda t: (t.skill_b if t.skill_b is not None else -math.inf))
    reason = (f"{prefix}{chosen.b} is better than {defender} at {alpha:g} (Holm over {m}): skill "
              f"{_fmt(chosen.skill_b)} vs {_fmt(chosen.skill_a)} on {chosen.n} rows, DM t = "
              f"{chosen.statistic:+.2f}, p = {chosen.p_value:.4f}")
    return ChampionDecision(kind, chosen.b, defender, True, reason, tests, alpha)


@dataclass(frozen=True)
class DriftVerdict:
    """Validation skill against the skill on newer rows the model never saw: a significant drop?"""

    test: str
    flagged: bool
    reason: str
    validation_skill: float | None
    live_skill: float | None
    drop: float | None
    threshold: float
    statistic: float | None
    p_value: float | None
    alpha: float
    se_validation: float | None  # the reference spread: max(validation SE, fold-skill SD)
    se_live: float | None
    df: float | None
    live_interval: list[float] | None
    n: int
    n_effective: float
    start_ms: int | None
    end_ms: int | None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _finite(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and math.isfinite(value) else None


def _validation_spread(validation: Mapping[str, Any]) -> tuple[float | None, float]:
    """(spread, degrees of freedom) of the validation skill as a stand-in for another period's skill."""
    se = _finite(validation.get("skill_se"))
    if se is None:
        interval = validation.get("skill_interval")
        if isinstance(interval, Sequence) and len(interval) == 2 and None not in interval:
            se = (float(interval[1]) - float(interval[0])) / (2 * Z95)
    blocks = (validation.get("n_times") or 0) / max(1, validation.get("block_bars") or 1)
    se_df = max(1.0, blocks - 1.0) if blocks else math.inf
    folds = validation.get("walk_forward") or {}
    period_sd = _finite(folds.get("period_skill_sd"))
    periods = len(folds.get("period_skills") or [])
    if period_sd is not None and (se is None or period_sd > se) and periods >= 3:
        return period_sd, float(periods - 1)
    fold_sd = _finite(folds.get("skill_sd"))
    usable = sum(1 for f in folds.get("folds") or [] if f.get("skill") is not None)
    if fold_sd is not None and (se is None or fold_sd > se) and usable >= 2:
        return fold_sd, float(usable - 1)
    return se, se_df


def _welch(v1: float, df1: float, v2: float, df2: float) -> float:
    denominator = (v1 * v1 / df1 if v1 > 0 else 0.0) + (v2 * v2 / df2 if v2 > 0 else 0.0)
    return (v1 + v2) ** 2 / denominator if denominator > 0 else math.inf


def drift_verdict(
    validation: Mapping[str, Any],
    live: SkillEstimate,
    *,
    threshold: float = DRIFT_THRESHOLD,
    alpha: float = ALPHA,
    name: str = "skill_drop_t",
) -> DriftVerdict:
    """Flag when validation skill - live skill > `threshold` and the drop is significant (one-sided).

    `validation` is a model's performance dict (`skill`, `skill_se` or `skill_interval`, `walk_forward`);
    `live` the skill estimate on its unseen newest rows. t = drop / sqrt(spread² + se_live²); a
    validation without either (older models) counts only the live standard error.
    """
    before, now = validation.get("skill"), live.skill
    common = dict(threshold=threshold, alpha=alpha, live_interval=live.interval, n=live.n,
                  n_effective=live.n_effective, start_ms=live.start_ms, end_ms=live.end_ms,
                  validation_skill=before if isinstance(before, int | float) else None, live_skill=now)
    if not isinstance(before, int | float) or now is None:
        return DriftVerdict(name, False, "no skill to compare", drop=None, statistic=None, p_value=None,
                            se_validation=None, se_live=live.se, df=None, **common)
    drop = float(before) - float(now)
    (se_v, df_v), se_l = _validation_spread(validation), live.se
    df_l = max(1.0, live.n_times / max(1, live.block) - 1.0) if live.n_times else math.inf
    v_v, v_l = (se_v or 0.0) ** 2, (se_l or 0.0) ** 2
    variance = v_v + v_l
    df = max(1.0, _welch(v_v, df_v, v_l, df_l))
    z = drop / math.sqrt(variance) if variance > 0 else None
    p = float(stats.t(df).sf(z)) if z is not None else None
    significant = p is not None and p < alpha
    flagged = drop > threshold and significant
    verb = "flagged" if flagged else "not flagged"
    reason = (f"skill {before:.4f} at validation, {now:.4f} on {live.n} newer rows: drop {drop:+.4f} "
              f"({'>' if drop > threshold else '<='} {threshold}), t = {_fmt(z, 2)}, p = {_fmt(p, 3)} "
              f"({'significant' if significant else 'not significant'} at {alpha:g}): {verb}")
    return DriftVerdict(name, flagged, reason, drop=round(drop, 6), statistic=z, p_value=p,
                        se_validation=se_v, se_live=se_l, df=round(df, 2), **common)


def tuning_verdict(
    validation: Mapping[str, Any], retrained: SkillEstimate, *, threshold: float = DRIFT_THRESHOLD,
    alpha: float = ALPHA,
) -> DriftVerdict:
    """Still below the definition's validation skill after retraining (same test as drift): needs tuning."""
    return drift_verdict(validation, retrained, threshold=threshold, alpha=alpha,
                         name="retrained_skill_drop_t")


def _fmt(value: float | None, digits: int = 4) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"
