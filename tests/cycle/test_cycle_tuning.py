"""The cycle's tune step: the stage that records `needs_tuning` for a definition (drift, retrain) starts a
bounded study of it on the cycle's window, recorded in the cycle; the workers run its trials.

The whole path runs in the first test: a model trained on a trending market meets a random walk, drift
flags it, its retrain on the new window is still below its validation skill, and the cycle starts a study.
The others call the step on a finished cycle, as the drift and retrain stages call it."""

from __future__ import annotations

import pandas as pd
import pytest
from sqlmodel import select

from app.core.config import reset_settings
from app.core.db import session_scope
from app.data.simulator import SimulatorParams
from app.services.cycle import get_cycle, start_cycle
from app.services.cycle.drift import start_tuning
from app.services.tuning.studies import get_study
from app.tables.models import ModelEvent, ModelRecord
from tests.cycle.helpers import definition, extend_candles, run_workers, seed_candles

SYMBOLS = ["BTC-USDT", "ETH-USDT"]


def _join(*parts: dict) -> dict:
    return {s: pd.concat([p[s] for p in parts], ignore_index=True) for s in parts[0]}


@pytest.mark.slow
def test_drift_then_a_retrain_still_below_starts_a_tuning_study(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TUNING_CYCLE_TRIALS", "2")
    monkeypatch.setenv("TUNING_CYCLE_SECONDS", "120")
    monkeypatch.setenv("TUNING_FOLDS", "3")
    reset_settings()
    direction = definition("xgboost", "dir", features=None) | {"features": ["returns", "returns_5", "rsi_14"]}
    history = seed_candles(days=2, params=SimulatorParams(ar1=0.5), symbols=SYMBOLS)  # a signal to learn
    first = start_cycle("operator", {"definitions": [direction], "window_days": 2, "symbols": SYMBOLS})
    run_workers()
    assert get_cycle(first.id).status == "succeeded"
    with session_scope() as session:
        (old,) = [r.name for r in session.exec(select(ModelRecord)).all()]

    # 20 h of the opposite regime (drift sees mostly that; a retrain learns it), then the first one again for
    # the newest ~5 h, the retrain's holdout: there the retrain is far below the old validation skill
    changed = extend_candles(history, days=20 / 24, params=SimulatorParams(ar1=-0.5))
    extend_candles(_join(history, changed), days=5 / 24, params=SimulatorParams(ar1=0.5), seed=9)
    # a definition of another kind, so the direction model stays its kind's champion and is checked for drift
    other = definition("gradient_boosting", "vol")
    second = start_cycle("operator", {"definitions": [other], "window_days": 25 / 24, "symbols": SYMBOLS})
    run_workers()  # the cycle's stages, then the study's trials on the tune queue

    done = get_cycle(second.id)
    assert done.results["drift"][old]["flagged"], done.results["drift"][old]
    retrain = done.results["retrains"][old]
    assert retrain["needs_tuning"], retrain
    study_id = retrain["study"]["study_id"]
    with session_scope() as session:
        events = list(session.exec(select(ModelEvent).where(ModelEvent.cycle_id == second.id,
                                                            ModelEvent.event == "needs_tuning")).all())
    assert [e.numbers["study"]["study_id"] for e in events] == [study_id]
    study = get_study(study_id)
    assert study.trigger == "cycle" and study.cycle_id == second.id and study.definition == "dir"
    assert study.base["features"] == direction["features"]
    assert study.budget == {"trials": 2, "seconds": 120.0}
    assert study.status == "finished", study.error
    assert study.result["trials"] == 2 and study.result["decision"] in ("adopted", "rejected")


def test_the_cycle_starts_a_bounded_study_of_a_definition_that_needs_tuning(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TUNING_CYCLE_TRIALS", "2")
    monkeypatch.setenv("TUNING_CYCLE_SECONDS", "120")
    monkeypatch.setenv("TUNING_FOLDS", "3")
    reset_settings()
    direction = definition("xgboost", "dir") | {"features": ["returns", "returns_5", "rsi_14"]}
    seed_candles(days=1.5, params=SimulatorParams(ar1=0.3), symbols=SYMBOLS)
    cycle = start_cycle("operator", {"definitions": [direction], "window_days": 1.5, "symbols": SYMBOLS})
    run_workers()

    entry = start_tuning(cycle.id, "dir")
    again = start_tuning(cycle.id, "dir")  # one study of a definition at a time
    assert again["study_id"] == entry["study_id"] and "still running" in again["skipped"]
    run_workers()  # the trials, on the tune queue

    done = get_cycle(cycle.id)
    assert done.results["tuning"]["dir"]["study_id"] == entry["study_id"]
    study = get_study(entry["study_id"])
    assert study.trigger == "cycle" and study.cycle_id == cycle.id and study.definition == "dir"
    assert study.budget == {"trials": 2, "seconds": 120.0}
    assert study.window["start_ms"] == done.results["window"]["start_ms"]
    assert study.base["features"] == direction["features"]
    assert study.status == "finished", study.error
    assert study.result["trials"] == 2 and study.result["decision"] in ("adopted", "rejected")


def test_no_study_when_the_cycle_budget_is_zero(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TUNING_CYCLE_TRIALS", "0")
    reset_settings()
    seed_candles(days=0.5, symbols=SYMBOLS)
    cycle = start_cycle("operator", {"definitions": [definition("xgboost", "dir")], "window_days": 0.5,
                                     "symbols": SYMBOLS, "ingest": False})
    entry = start_tuning(cycle.id, "dir")
    assert "TUNING_CYCLE_TRIALS is 0" in entry["skipped"]
    assert get_cycle(cycle.id).errors[-1]["stage"] == "tuning"
