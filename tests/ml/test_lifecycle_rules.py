"""The evidence behind every decision: paired tests, skill intervals and the lifecycle rules (DESIGN 5-6)."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest
from scipy import stats

from app.ml import lifecycle
from app.ml.comparison import paired_test
from app.ml.evaluation import RowScores, SkillEstimate, skill_estimate
from app.ml.ranking import ModelRanker, RankEntry
from app.ml.walk_forward import fold_masks

BAR = 60_000


def _ar(n: int, phi: float, rng: np.random.Generator) -> np.ndarray:
    x = np.zeros(n)
    e = rng.normal(size=n)
    for t in range(1, n):
        x[t] = phi * x[t - 1] + e[t]
    return x


def _rows(
    name: str, loss: np.ndarray, baseline: np.ndarray, horizon: int = 1, root: bool = False
) -> RowScores:
    n = len(loss)
    return RowScores(name, np.array(["X"] * n), np.arange(n, dtype="int64") * BAR, loss, baseline, "base",
                     horizon, BAR, root)


H = 10  # labels of neighbouring rows overlap by h bars, so their errors do too


def _overlapping(n: int, rng: np.random.Generator) -> np.ndarray:
    return np.convolve(rng.chisquare(1, n + H - 1), np.ones(H) / H, mode="valid")


def _clustered_losses(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Baseline loss and two models' losses (mean 0.9 x the baseline's) with errors that overlap over h
    rows and cluster for hours, as real ones do."""
    level = np.exp(0.5 * _ar(n, 0.98, rng) / np.sqrt(1 / (1 - 0.98**2)))
    baseline = level * _overlapping(n, rng)
    return baseline, 0.9 * level * _overlapping(n, rng), 0.9 * level * _overlapping(n, rng)


def test_paired_test_rejects_at_about_its_level_when_both_models_are_equally_good() -> None:
    rejections, naive = 0, 0
    for seed in range(200):
        baseline, a, b = _clustered_losses(1000, np.random.default_rng(seed))
        test = paired_test(_rows("a", a, baseline, H), _rows("b", b, baseline, H), "b_better")
        rejections += test.p_value < 0.05
        naive += stats.ttest_rel(a, b, alternative="greater").pvalue < 0.05
    assert rejections <= 0.09 * 200  # 5% nominal; HAC on overlapping, clustered losses stays close to it
    assert naive > 2 * rejections  # an i.i.d. t test ignores the dependence and switches far more often


def test_paired_test_finds_a_clearly_better_model_and_says_on_which_rows() -> None:
    baseline, a, _ = _clustered_losses(1500, np.random.default_rng(1))
    better = a * 0.6
    test = paired_test(_rows("a", a, baseline), _rows("b", better, baseline, horizon=5), "b_better")
    assert test.p_value < 0.01 and test.statistic > 0 and test.skill_b > test.skill_a
    assert test.lags >= 5 and 1 <= test.n_effective <= test.n_times == 1500
    assert (test.start_ms, test.end_ms) == (0, 1499 * BAR)
    assert paired_test(_rows("a", a, baseline), _rows("b", better, baseline), "b_worse").p_value > 0.99


def test_skill_interval_covers_the_true_skill_about_95_percent_of_the_time() -> None:
    covered, widths = 0, []  # widths: kept to see them when it fails
    for seed in range(100):
        rng = np.random.default_rng(1000 + seed)
        baseline, a, _ = _clustered_losses(600, rng)  # E[a] = 0.9 E[baseline]: true skill 0.1
        estimate = skill_estimate(_rows("m", a, baseline, H), reps=299, seed=seed)
        lo, hi = estimate.interval
        covered += lo <= 0.1 <= hi
        widths.append(hi - lo)
        assert estimate.block >= H and estimate.n_effective < estimate.n_times / 2
    assert covered >= 85


def test_an_rmse_skill_and_its_interval_use_the_square_root() -> None:
    rng = np.random.default_rng(3)
    baseline = rng.chisquare(1, 800)
    model = baseline * 0.64
    estimate = skill_estimate(_rows("m", model, baseline, root=True), reps=199)
    assert estimate.skill == pytest.approx(0.2) and estimate.beats_baseline
    assert estimate.interval[0] == pytest.approx(0.2) and estimate.interval[1] == pytest.approx(0.2)


def _estimate(skill: float, se: float, n: int = 500) -> SkillEstimate:
    return SkillEstimate(skill, [skill - 2 * se, skill + 2 * se], se, n, n, n / 3, 5, "base_rate", 0, n * BAR)


def test_drift_is_flagged_only_on_a_drop_above_the_threshold_that_is_also_significant() -> None:
    validation = {"skill": 0.10, "skill_se": 0.01}
    flagged = lifecycle.drift_verdict(validation, _estimate(0.02, 0.01))
    assert flagged.flagged and flagged.p_value < 0.05 and flagged.drop == pytest.approx(0.08)
    noisy = lifecycle.drift_verdict(validation, _estimate(0.02, 0.08))  # big drop, but noise explains it
    assert not noisy.flagged and noisy.p_value > 0.05
    small = lifecycle.drift_verdict(validation, _estimate(0.07, 0.002))  # significant, but only 0.03
    assert not small.flagged and small.p_value < 0.05
    assert {"test", "statistic", "p_value", "n_effective", "start_ms", "end_ms"} <= set(flagged.as_dict())


def test_drift_uses_the_validation_interval_when_an_older_model_has_no_standard_error() -> None:
    verdict = lifecycle.drift_verdict({"skill": 0.10, "skill_interval": [0.0, 0.2]}, _estimate(0.02, 0.001))
    assert verdict.se_validation == pytest.approx(0.2 / (2 * 1.96), rel=1e-3) and not verdict.flagged


def _test(b: str, p: float, skill_b: float = 0.1) -> object:
    from app.ml.comparison import PairedTest

    return PairedTest("diebold_mariano_hac", "champ", b, "b_better", 2.0, p, 0.01, None, 0.05, skill_b, 500,
                      500, 100.0, 5, 0, 1)


def test_a_challenger_takes_the_place_only_when_better_at_five_percent_holm_corrected() -> None:
    alone = lifecycle.champion_decision("direction", "champ", [_test("c1", 0.03)])
    assert alone.switched and alone.champion == "c1"
    two = lifecycle.champion_decision("direction", "champ", [_test("c1", 0.03), _test("c2", 0.04)])
    assert not two.switched and two.champion == "champ"  # Holm: 0.03 >= 0.05 / 2
    both = [_test("c1", 0.001, 0.1), _test("c2", 0.02, 0.2)]
    clear = lifecycle.champion_decision("direction", "champ", both)
    assert clear.champion == "c2"  # both pass Holm (0.025, 0.05): the better skill serves
    assert len(clear.tests) == 2 and clear.tests[0]["p_value"] == 0.001


def test_without_a_champion_the_first_declared_definition_starts_and_is_challenged_like_a_champion() -> None:
    kept = lifecycle.champion_decision("direction", "first", [_test("c1", 0.08)], starting=True)
    assert kept.champion == "first" and not kept.switched and "first declared" in kept.reason
    taken = lifecycle.champion_decision("direction", "first", [_test("c1", 0.001)], starting=True)
    assert taken.champion == "c1" and taken.switched
    assert lifecycle.champion_decision("direction", None, []).champion is None


def test_the_fresh_fit_replaces_unless_significantly_worse_and_never_lets_a_champion_expire() -> None:
    from app.ml.comparison import PairedTest

    worse = PairedTest("diebold_mariano_hac", "old", "new", "b_worse", -3.0, 0.001, -0.02, None, 0.1, 0.05,
                       500, 500, 90.0, 5, 0, 1)
    tie = PairedTest("diebold_mariano_hac", "old", "new", "b_worse", -0.5, 0.31, -0.001, None, 0.1, 0.09,
                     500, 500, 90.0, 5, 0, 1)
    assert lifecycle.retrain_verdict(tie).replace  # the fresher fit wins ties
    assert not lifecycle.retrain_verdict(worse).replace
    kept = lifecycle.refresh_verdict(worse, previous_age_hours=24, expiry_hours=72, cycle_hours=12)
    assert not kept.replace
    expiring = lifecycle.refresh_verdict(worse, previous_age_hours=61, expiry_hours=72, cycle_hours=12)
    assert expiring.replace and "MODEL_EXPIRY_HOURS" in expiring.reason


def test_no_model_outranking_the_evidence_champion_is_made_active_and_its_old_fit_is_superseded() -> None:
    t = datetime(2026, 1, 1, tzinfo=UTC)
    entries = [
        RankEntry("dir_a_002", "direction", "candidate", 1.0, t, "dir_a"),  # the incumbent's fresh fit
        RankEntry("dir_b_001", "direction", "candidate", 1.4, t, "dir_b"),  # higher by noise only
        RankEntry("dir_a_001", "direction", "active", 2.0, t, "dir_a"),
        RankEntry("dir_c_001", "direction", "candidate", 0.5, t, "dir_c"),
        RankEntry("risk_001", "risk", "candidate", -1.0, t, "risk"),
    ]
    plan = ModelRanker().plan(entries, champions={"direction": "dir_a_002"})
    assert plan.champions == {"direction": "dir_a_002", "risk": "risk_001"}
    assert "dir_b_001" not in plan.active and "dir_a_001" not in plan.active  # both outrank the champion
    assert plan.active == ["dir_a_002", "dir_c_001", "risk_001"]
    assert plan.status_of("dir_a_001") == "superseded" and plan.status_of("dir_b_001") == "candidate"


def test_walk_forward_folds_expand_and_every_train_label_ends_before_its_test_block() -> None:
    ts = np.repeat(np.arange(1000, dtype="int64") * BAR, 3)  # three symbols at each time
    folds = fold_masks(ts, horizon=5, bar_ms=BAR, k=4)
    assert [f.index for f in folds] == [1, 2, 3, 4]
    sizes = [int(f.train.sum()) for f in folds]
    assert sizes == sorted(sizes) and sizes[0] > 0
    for f in folds:
        assert (ts[f.train] + 5 * BAR < ts[f.test].min()).all()
        assert not (f.train & f.test).any()
    tested = np.zeros(len(ts), dtype=bool)
    for f in folds:
        assert not (tested & f.test).any()
        tested |= f.test
    assert tested[ts >= folds[0].test_start_ms].all()  # the test blocks tile the rest of the train part
    assert fold_masks(ts, 5, BAR, k=0) == []
