"""The pure rules: DESIGN 6 ranking counts and feature drift calibration (decision rules: tests/ml)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from app.ml.drift import feature_drift
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
