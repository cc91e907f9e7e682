"""The pure rules: DESIGN 6 ranking, the drift flag, feature drift calibration and the retrain verdict."""

from __future__ import annotations

import numpy as np
import pandas as pd

from app.ml.drift import accuracy_drift, feature_drift, retrain_verdict
from app.ml.ranking import ModelRanker, RankEntry


def test_ranking_keeps_each_kinds_champion_active_even_with_a_low_score() -> None:
    entries = [RankEntry(f"d{i}", "direction", "candidate", 50.0 - i) for i in range(6)]
    entries.append(RankEntry("weak_risk", "risk", "candidate", -3.0))
    plan = ModelRanker().plan(entries)
    assert "weak_risk" in plan.active and len(plan.active) == 5
    assert plan.champions == {"direction": "d0", "risk": "weak_risk"}
    # 7 not archived: nothing to prune
    assert plan.archive == {}


def test_ranking_archives_lowest_two_when_more_than_seven_and_drops_out_of_top_actives() -> None:
    entries = [
        RankEntry(f"m{i}", "direction", "active" if i == 8 else "candidate", 100.0 - i) for i in range(9)
    ]
    plan = ModelRanker().plan(entries)
    assert plan.active == ["m0", "m1", "m2", "m3", "m4"]
    assert "m8" in plan.archive and "top 5" in plan.archive["m8"]  # an active model that fell out
    assert "m7" in plan.archive and "m6" in plan.archive  # 8 left > 7: the lowest two non-active
    assert plan.keep_candidate == ["m5"]


def test_accuracy_drift_flags_only_a_drop_above_five_points() -> None:
    assert accuracy_drift({"accuracy": 0.60}, {"accuracy": 0.54}, is_classifier=True).flagged
    assert not accuracy_drift({"accuracy": 0.60}, {"accuracy": 0.56}, is_classifier=True).flagged
    assert accuracy_drift({"skill": 0.10}, {"skill": 0.02}, is_classifier=False).metric == "skill"


def test_feature_drift_is_quiet_on_autocorrelated_data_of_the_same_process_and_fires_on_a_shift() -> None:
    rng = np.random.default_rng(0)
    n = 1440 * 6
    x = np.zeros(n)
    for t in range(1, n):  # strongly autocorrelated, like a 1m indicator
        x[t] = 0.995 * x[t - 1] + rng.normal()
    train = pd.DataFrame({"f": x[: 1440 * 5]})
    same = pd.DataFrame({"f": x[1440 * 5 :]})
    shifted = pd.DataFrame({"f": x[1440 * 5 :] + 4 * x.std()})
    assert not feature_drift(train, same)["f"]["drifted"]
    assert feature_drift(train, shifted)["f"]["drifted"]


def test_retrain_verdict_uses_f1_for_classifiers_and_rmse_for_regressors() -> None:
    assert retrain_verdict({"f1": 0.5}, {"f1": 0.6}, is_classifier=True).promote
    assert not retrain_verdict({"f1": 0.6}, {"f1": 0.6}, is_classifier=True).promote
    assert retrain_verdict({"rmse": 2.0}, {"rmse": 1.5}, is_classifier=False).promote
    assert not retrain_verdict({"rmse": 1.5}, {"rmse": 2.0}, is_classifier=False).promote
