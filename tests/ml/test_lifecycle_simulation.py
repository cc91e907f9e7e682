"""The lifecycle rules on simulated cycles (a small, seeded version of bench/lifecycle.py).

The same fits go to the new rules (DESIGN 6) and to the old ones, in one run. The bounds are what a
regression (deciding on noise again, or missing a real change) would break; the run is deterministic.
"""

from __future__ import annotations

import pytest

from bench import lifecycle as sim

CFG = sim.Config(window_days=2.0, stationary_trials=1, stationary_cycles=6, vanish_trials=3,
                 challenger_trials=2, first_seed=3)
FAST = {"n_estimators": 12, "max_depth": 2}
STATIONARY = [d | {"config": FAST} for d in sim.STATIONARY if d["kind"] == "direction"]
DIRECTION_ONLY = {"incumbents": [sim.INCUMBENT_BLIND[0] | {"config": FAST}],
                  "challengers": [sim.CHALLENGERS[0] | {"config": FAST}]}


@pytest.fixture(scope="module")
def summary() -> dict:
    readers = [d | {"config": FAST} for d in sim.SIGNAL_READERS]
    return sim.summarise(sim.stationary(CFG, STATIONARY),
                         sim.vanish(CFG, cycles_before=1, cycles_after=2, readers=readers),
                         sim.challenger(CFG, joins_at=1, cycles=3, **DIRECTION_ONLY),
                         cycles_before=1, joins_at=1)


def test_on_a_stationary_market_the_new_rules_neither_switch_champions_nor_flag_drift(summary) -> None:
    new = summary["new"]
    assert new["kind_cycles"] == 5 and new["drift_evaluations"] == 5
    assert new["champion_changes"] == 0
    assert new["false_flags"] <= 1


def test_a_vanished_signal_is_flagged_and_a_better_challenger_switched_in_within_two_cycles(summary) -> None:
    new = summary["new"]
    assert new["vanish_detected"] == new["vanish_trials"] == 3
    assert new["challenger_detected"] == new["challenger_trials"] == 2


def test_no_champion_ages_past_the_expiry_and_the_old_rules_did_worse(summary) -> None:
    new, old = summary["new"], summary["old"]
    assert new["max_champion_age_h"] <= sim.EXPIRY_HOURS
    worse = (old["champion_changes"] > new["champion_changes"] or old["false_flags"] > new["false_flags"]
             or old["challenger_detected"] < new["challenger_detected"])
    assert worse, (new, old)
