"""A second cycle decides each champion on paired tests and records the numbers (DESIGN 6)."""

from __future__ import annotations

from sqlmodel import select

from app.core.db import session_scope
from app.services.cycle import get_cycle, start_cycle
from app.tables.models import ModelEvent, ModelRecord
from tests.cycle.helpers import definition, extend_candles, run_workers, seed_candles

SYMBOLS = ["BTC-USDT", "ETH-USDT"]
DEFINITIONS = [definition("xgboost", "dir_a"), definition("xgboost", "dir_b", max_depth=2)]


def _cycle() -> object:
    cycle = start_cycle("operator", {"definitions": DEFINITIONS, "window_days": 1.5, "symbols": SYMBOLS})
    run_workers()
    done = get_cycle(cycle.id)
    assert done.status == "succeeded", done.errors
    return done


def test_the_incumbent_is_refreshed_or_defended_on_a_paired_test_whose_numbers_are_recorded() -> None:
    history = seed_candles(days=1.5, symbols=SYMBOLS)
    first = _cycle()
    champion = first.results["ranking"]["champions"]["direction"]
    # no champion yet: the first declared definition starts, and the other takes it only on a test at 5%
    start = first.results["ranking"]["champion_decisions"]["direction"]["decision"]
    assert start["defender"].startswith("dir_a_") and "first declared definition" in start["reason"]
    [opening] = start["tests"]
    assert opening["a"] == start["defender"] and opening["b"].startswith("dir_b_")
    assert champion == start["defender"] if opening["p_value"] >= 0.05 else champion == opening["b"]
    extend_candles(history, days=0.5)

    second = _cycle()

    plan = second.results["ranking"]["champion_decisions"]["direction"]
    assert plan["previous"] == champion and champion in second.results["ranking"]["served_before"]
    refresh = plan["refresh"]["test"]
    assert refresh["test"] == "diebold_mariano_hac" and refresh["alternative"] == "b_worse"
    assert refresh["n"] > 100 and 1 <= refresh["n_effective"] <= refresh["n_times"]
    assert refresh["start_ms"] < refresh["end_ms"] and 0 <= refresh["p_value"] <= 1
    [challenge] = plan["decision"]["tests"]
    assert challenge["alternative"] == "b_better" and challenge["df"] > 0
    new_champion = second.results["ranking"]["champions"]["direction"]
    with session_scope() as session:
        records = {r.name: r for r in session.exec(select(ModelRecord)).all()}
        events = list(session.exec(select(ModelEvent).where(ModelEvent.cycle_id == second.id)).all())
    assert records[new_champion].status == "active"
    decided = [e for e in events if e.model_name == new_champion and e.event in ("promoted", "validated")]
    assert decided and decided[0].numbers["champion_decision"]["decision"]["champion"] == new_champion
    if new_champion != champion:  # refreshed or replaced: the previous champion left the active set
        assert records[champion].status in ("superseded", "archived")
    drift = second.results["drift"][champion]  # the served model was checked on its unseen hours
    assert drift["skill"]["test"] == "skill_drop_t" and drift["skill"]["n"] > 100
