"""A study's verdict on evidence: a planted signal is found and adopted; a random walk adopts nothing;
the holdout never reaches a trial (poisoning it changes no trial's value)."""

from __future__ import annotations

from pathlib import Path

from app.data.candles import store_candles
from app.services.dashboard.tuning import tuning_page
from app.services.definition_versions import list_versions
from app.services.tuning import storage
from app.services.tuning.studies import get_study, start_study
from tests.tuning.helpers import SPACE, options, run_tune_worker, seed


def _trial_values(study_id: str) -> list[tuple[int, float | None, dict]]:
    study = storage.load(get_study(study_id).optuna_name)
    return [(t.number, t.value, t.params) for t in study.get_trials(deepcopy=False)]


def test_a_planted_signal_is_found_from_a_bad_start_and_adopted(store_dir: Path) -> None:
    seed(2.1, ar1=0.5)
    study = start_study("direction_tuned", trials=8, minutes=5, options=options(), search_space=SPACE)
    run_tune_worker()
    done = get_study(study.id)
    assert done.status == "finished", done.error
    result = done.result
    assert result["trials"] == 8
    assert result["decision"] == "adopted", result["reason"]
    assert "returns" in result["best"]["definition"]["features"]
    assert result["new_skill"] > result["old_skill"]
    assert result["holdout"]["test"]["p_value"] < 0.05
    versions = list_versions("direction_tuned")
    assert [v.version for v in versions] == [2]
    assert versions[0].definition["features"] == result["best"]["definition"]["features"]


def test_a_study_on_a_random_walk_adopts_nothing(store_dir: Path) -> None:
    seed(2.1, ar1=0.0, seed=11)
    study = start_study("direction_tuned", trials=6, minutes=5, options=options(), search_space=SPACE)
    run_tune_worker()
    result = get_study(study.id).result
    assert result["trials"] == 6
    assert result["decision"] == "rejected", result["reason"]
    assert result["holdout"]["test"]["p_value"] >= 0.05
    assert result["version"] is None and list_versions() == []
    page = tuning_page()  # the dashboard's Tuning page reads the real study
    (shown,) = page["studies"]
    assert shown["id"] == study.id and page["available"]
    assert len(shown["best_so_far"]) == 6 and shown["best_so_far"][-1] == shown["best"]["value"]
    assert shown["adopted"]["decision"] == "rejected" and shown["adopted"]["trials"] == 6


def _poison_holdout(frames: dict, cut_ms: int) -> None:
    """Replace every candle at or after the holdout cut by another market's (so its labels change)."""
    from sqlmodel import delete

    from app.core.db import session_scope
    from app.data.simulator import MarketSimulator
    from app.tables.candles import Candle

    before = {s: f[f["ts"] < cut_ms].reset_index(drop=True) for s, f in frames.items()}
    until = max(int(f["ts"].iloc[-1]) for f in frames.values())
    other = MarketSimulator(99).extend(before, until)
    with session_scope(write=True) as session:
        session.exec(delete(Candle).where(Candle.ts >= cut_ms))
    for symbol, frame in other.items():
        store_candles(symbol, frame[frame["ts"] >= cut_ms], "simulated")


def test_poisoning_the_holdout_changes_no_trial_value_only_the_holdout_verdict(store_dir: Path) -> None:
    frames = seed(2.1, ar1=0.3, seed=5)
    first = start_study("direction_tuned", trials=4, minutes=5, options=options(), search_space=SPACE)
    run_tune_worker()
    cut = int(get_study(first.id).window["cut_ms"])
    _poison_holdout(frames, cut)
    second = start_study("direction_tuned", trials=4, minutes=5, options=options(), search_space=SPACE)
    run_tune_worker()
    assert int(get_study(second.id).window["cut_ms"]) == cut
    assert _trial_values(first.id) == _trial_values(second.id)  # no trial read a holdout candle
    a, b = get_study(first.id).result, get_study(second.id).result
    assert a["holdout"]["current_skill"] != b["holdout"]["current_skill"]  # the holdout itself did change
