"""Pieces of the dashboard's read model that decide what a person is told: the verdict beside a skill, the
latency percentiles, the tuning study's best-so-far line."""

from __future__ import annotations

import numpy as np
import pytest

from app.services.dashboard.common import skill_summary
from app.services.dashboard.serving import quantile
from app.services.dashboard.tuning import study_view


@pytest.mark.parametrize(
    ("performance", "verdict"),
    [
        ({"skill": 0.04, "skill_interval": [0.01, 0.07]}, "beats"),
        ({"skill": 0.04, "skill_interval": [-0.01, 0.09]}, "does_not_beat"),
        ({"skill": 0.04, "skill_interval": [-0.01, 0.09], "beats_baseline": True}, "beats"),
        ({"skill": 0.04}, "no_interval"),
        ({"skill": 0.0}, "does_not_beat"),
        ({"skill": -0.2}, "does_not_beat"),
        ({}, "unknown"),
    ],
)
def test_a_skill_is_called_a_win_only_when_its_interval_says_so(performance: dict, verdict: str) -> None:
    assert skill_summary(performance)["verdict"] == verdict


def test_latency_percentiles_follow_prometheus_histogram_quantile() -> None:
    rng = np.random.default_rng(5)
    seconds = rng.uniform(0.0, 0.1, 20_000)
    bounds = [0.01 * k for k in range(1, 11)] + [float("inf")]
    buckets = [(b, float(np.sum(seconds <= b))) for b in bounds]

    for q in (0.5, 0.9, 0.99):
        assert quantile(q, buckets) == pytest.approx(np.quantile(seconds, q), abs=0.002)
    assert quantile(0.5, [(0.1, 0.0), (float("inf"), 0.0)]) is None
    assert quantile(0.99, [(0.1, 1.0), (float("inf"), 100.0)]) == 0.1  # past the last finite bound


def test_best_so_far_counts_only_finished_trials() -> None:
    study = {
        "trials": [
            {"number": 2, "state": "pruned", "value": 0.9},
            {"number": 0, "state": "complete", "value": 0.01},
            {"number": 1, "state": "complete", "value": 0.03},
            {"number": 3, "state": "fail", "value": None},
            {"number": 4, "state": "complete", "value": 0.02},
        ]
    }
    view = study_view(study)
    assert [t["number"] for t in view["trials"]] == [0, 1, 2, 3, 4]
    assert view["best_so_far"] == [0.01, 0.03, 0.03, 0.03, 0.03]
    assert view["best"]["number"] == 1
    assert view["states"] == {"complete": 3, "pruned": 1, "fail": 1}
