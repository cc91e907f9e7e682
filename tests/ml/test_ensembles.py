"""EnsemblePredictor arithmetic against hand-computed blends, and stacking's refusal of training rows."""

from __future__ import annotations

import numpy as np
import pytest

from app.core.errors import BadInput
from app.ml.ensembles import EnsemblePredictor, beats_members


class Member:
    def __init__(self, kind: str, train_end_ms: int = 1_000) -> None:
        self.kind = kind
        self.training_ = {"train_end_ms": train_end_ms}


def test_weighted_average_equals_the_hand_computed_blend() -> None:
    ens = EnsemblePredictor([Member("price"), Member("price"), Member("price")], [0.5, 0.3, 0.2])

    blended = ens.combine(np.array([[100.0, 110.0, 130.0], [1.0, 2.0, 3.0]]))

    assert blended == pytest.approx([0.5 * 100 + 0.3 * 110 + 0.2 * 130, 0.5 + 0.6 + 0.6])


def test_weighted_average_of_direction_answers_blends_probability_of_up() -> None:
    ens = EnsemblePredictor([Member("direction"), Member("direction")], [3, 1])

    answer = ens.answer([{"direction": "UP", "confidence": 0.8}, {"direction": "DOWN", "confidence": 0.9}])

    assert answer == {"direction": "UP", "confidence": pytest.approx(0.75 * 0.8 + 0.25 * 0.1)}


def test_voting_follows_the_majority_with_the_voters_mean_confidence() -> None:
    ens = EnsemblePredictor([Member("direction")] * 3, method="voting")

    # two members say UP (0.55, 0.6) though the third is very sure of DOWN (P(UP) = 0.05)
    answer = ens.answer([{"direction": "UP", "confidence": 0.55}, {"direction": "UP", "confidence": 0.6},
                         {"direction": "DOWN", "confidence": 0.95}])

    assert answer["direction"] == "UP" and answer["confidence"] == pytest.approx((0.55 + 0.6) / 2)


def test_voting_is_refused_for_regressions() -> None:
    with pytest.raises(BadInput, match="voting needs classifiers"):
        EnsemblePredictor([Member("volatility")] * 2, method="voting")


def test_stacking_refuses_rows_from_any_members_training_period() -> None:
    ens = EnsemblePredictor([Member("direction", 1_000), Member("direction", 5_000)], method="stacking")
    rng = np.random.default_rng(0)
    signals, y = rng.uniform(size=(50, 2)), rng.integers(0, 2, 50)

    with pytest.raises(BadInput, match="training data"):
        ens.fit_stacking(signals, y, row_times_ms=np.arange(4_000, 4_050))
    ens.fit_stacking(signals, y, row_times_ms=np.arange(5_001, 5_051))
    assert ens.meta is not None and ens.meta["rows"] == 50


def test_stacking_learns_to_trust_the_informative_member() -> None:
    rng = np.random.default_rng(1)
    truth = rng.normal(size=400)
    good, noise = truth + rng.normal(scale=0.1, size=400), rng.normal(size=400)
    ens = EnsemblePredictor([Member("volatility"), Member("volatility")], method="stacking")

    ens.fit_stacking(np.column_stack([good, noise]), truth, row_times_ms=np.arange(2_000, 2_400))

    assert ens.meta["weights"][0] > 0.9
    scores = ens.score(np.column_stack([good, noise]), truth)
    assert scores["ensemble"]["rmse"] <= scores["members"]["1"]["rmse"]


def test_an_ensemble_is_used_only_if_it_beats_every_member() -> None:
    scores = {"ensemble": {"f1": 0.6}, "members": {"a": {"f1": 0.55}, "b": {"f1": 0.61}}}

    assert not beats_members("direction", scores)
    scores["members"]["b"]["f1"] = 0.59
    assert beats_members("direction", scores)


def test_an_ensemble_that_always_says_up_does_not_beat_the_majority_baseline() -> None:
    # members that lean DOWN score F1 (of UP) near 0; a blend pushed to "always UP" gets a high F1
    # but is no better than guessing the majority class, so it must not be used
    y = np.random.default_rng(0).permutation(np.r_[np.ones(208), np.zeros(192)])  # 52% UP
    signals = np.column_stack([np.full(400, 0.45), np.full(400, 0.48)])
    ens = EnsemblePredictor([Member("direction"), Member("direction")], [0.5, 0.5])
    ens.combine = lambda s: np.full(len(s), 0.9)  # type: ignore[method-assign]

    scores = ens.score(signals, y, earlier_y=y)

    assert scores["ensemble"]["f1"] > max(m["f1"] for m in scores["members"].values())
    assert scores["ensemble"]["accuracy"] == pytest.approx(scores["baseline"]["accuracy"])
    assert not beats_members("direction", scores)
