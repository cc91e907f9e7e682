"""A study's verdict on evidence: a planted signal is found and adopted; a random walk adopts nothing;
the holdout never reaches a trial (poisoning it changes no trial's value)."""

from __future__ import annotations

from pathlib import Path

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
