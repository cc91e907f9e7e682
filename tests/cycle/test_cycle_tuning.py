"""The cycle's tune step: the stage that records `needs_tuning` for a definition (drift, retrain) starts a
bounded study of it on the cycle's window, recorded in the cycle; the workers run its trials.

(Which definitions need tuning is the lifecycle's `tuning_verdict`, tested with the drift rules; here the
step is called on a finished cycle, as the drift and retrain stages call it.)"""

from __future__ import annotations

import pytest

from app.core.config import reset_settings
from app.data.simulator import SimulatorParams
from app.services.cycle import get_cycle, start_cycle
from app.services.cycle.drift import start_tuning
from app.services.tuning.studies import get_study
from tests.cycle.helpers import definition, run_workers, seed_candles

SYMBOLS = ["BTC-USDT", "ETH-USDT"]


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
