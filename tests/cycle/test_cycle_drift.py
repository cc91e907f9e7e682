"""Drift: a model trained on one regime meets another -> flagged on a significant skill drop, retrained,
decided by a paired test on the same fresh rows."""

from __future__ import annotations

import pandas as pd
from sqlmodel import select

from app.core.db import session_scope
from app.data.simulator import SimulatorParams
from app.services.cycle import get_cycle, start_cycle
from app.tables.models import ModelEvent, ModelRecord
from tests.cycle.helpers import definition, extend_candles, run_workers, seed_candles

SYMBOLS = ["BTC-USDT", "ETH-USDT"]
TRENDING = SimulatorParams(ar1=0.3)
REVERTING = SimulatorParams(ar1=-0.3)


def _direction() -> dict:
    return definition("xgboost", "dir", features=None) | {"features": ["returns", "returns_5", "rsi_14"]}


def _first_cycle() -> tuple[dict, str]:
    history = seed_candles(days=2, params=TRENDING, symbols=SYMBOLS)
    cycle = start_cycle("operator", {"definitions": [_direction()], "window_days": 2, "symbols": SYMBOLS})
    run_workers()
    assert get_cycle(cycle.id).status == "succeeded"
    with session_scope() as session:
        (model,) = session.exec(select(ModelRecord)).all()
    assert model.status == "active"
    return history, model.name


def _second_cycle(window_days: float) -> tuple:
    # a definition of another kind, so the direction model stays its kind's champion and is checked for drift
    other = definition("gradient_boosting", "vol")
    cycle = start_cycle("operator", {"definitions": [other], "window_days": window_days, "symbols": SYMBOLS})
    run_workers()
    done = get_cycle(cycle.id)
    with session_scope() as session:
        records = {r.name: r for r in session.exec(select(ModelRecord)).all()}
        events = list(session.exec(select(ModelEvent).where(ModelEvent.cycle_id == cycle.id)).all())
    return done, records, events


def _join(*parts: dict) -> dict:
    return {s: pd.concat([p[s] for p in parts], ignore_index=True) for s in parts[0]}


def test_regime_change_flags_the_model_and_the_better_retrain_is_promoted() -> None:
    history, old = _first_cycle()
    extend_candles(history, days=1, params=REVERTING)

    done, records, events = _second_cycle(window_days=1)

    drift = done.results["drift"][old]
    assert drift["flagged"], drift
    assert drift["skill"]["drop"] > 0.05 and drift["skill"]["p_value"] < 0.05
    assert set(drift["feature_drift"]) == {"returns", "returns_5", "rsi_14"}
    flagged = [e for e in events if e.event == "flagged"]
    assert [e.model_name for e in flagged] == [old]
    numbers = flagged[0].numbers
    assert numbers["live_skill"] < numbers["validation_skill"] and numbers["test"] == "skill_drop_t"
    assert numbers["n_effective"] > 10 and numbers["start_ms"] < numbers["end_ms"]
    retrain = done.results["retrains"][old]
    assert retrain["outcome"] == "promoted" and retrain["replace"]
    assert retrain["test"]["test"] == "diebold_mariano_hac" and retrain["test"]["p_value"] >= 0.05
    new = retrain["new_model"]
    assert records[new].version == records[old].version + 1
    assert records[new].status == "active" and records[old].status == "superseded"
    superseded = [e for e in events if e.event == "superseded"]
    assert (
        superseded[0].model_name == old
        and superseded[0].numbers["holdout_from_ms"] == retrain["holdout_from_ms"]
    )


def test_retrain_that_is_significantly_worse_on_the_same_rows_is_rejected_and_the_old_model_stays() -> None:
    history, old = _first_cycle()
    # 20 h of the other regime (the drift check sees mostly that), then the old regime returns: the
    # retrain learns the other regime, while the fresh holdout (the newest ~5 h) favours the old model
    changed = extend_candles(history, days=20 / 24, params=REVERTING)
    extend_candles(_join(history, changed), days=5 / 24, params=TRENDING, seed=9)

    done, records, events = _second_cycle(window_days=25 / 24)

    assert done.results["drift"][old]["flagged"]
    retrain = done.results["retrains"][old]
    assert retrain["outcome"] == "rejected", retrain
    assert retrain["new_skill"] < retrain["old_skill"] and retrain["test"]["p_value"] < 0.05
    assert records[old].status == "active"
    assert records[retrain["new_model"]].status == "archived"
    rejected = {e.model_name for e in events if e.event == "rejected"}
    assert rejected == {old, retrain["new_model"]}
