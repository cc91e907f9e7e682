"""Trials are RQ jobs sharing one Optuna study in the database: two real worker processes run trials of
one study at once; a worker SIGKILLed mid-trial leaves its trial marked failed once the study is resumed,
and the study goes on to its result."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from optuna.trial import TrialState

from app.core.config import reset_settings
from app.services.tuning import storage
from app.services.tuning.studies import get_study, resume_study, start_study
from tests.tuning.helpers import SPACE, options, run_tune_worker, seed

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def short_heartbeat(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Trials beat every second and are taken for dead after 2 s of silence (here and in the workers)."""
    monkeypatch.setenv("TUNING_HEARTBEAT_SECONDS", "1")
    monkeypatch.setenv("TUNING_GRACE_SECONDS", "2")
    reset_settings()
    yield
    reset_settings()


def _worker(barrier: str = "") -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "tests.tuning.tune_worker"], cwd=ROOT,
                            start_new_session=True, env={**os.environ, "TUNE_WORKER_BARRIER": barrier})


def _trials(study_id: str) -> list:
    return storage.load(get_study(study_id).optuna_name).get_trials(deepcopy=False)


def _overlap(a, b) -> bool:  # noqa: ANN001 - FrozenTrial
    return a.datetime_start < b.datetime_complete and b.datetime_start < a.datetime_complete


@pytest.mark.slow
def test_two_worker_processes_run_trials_of_one_study_at_once(store_dir: Path) -> None:
    seed(2.1, ar1=0.3)
    study = start_study("direction_tuned", trials=4, minutes=5, options=options(), search_space=SPACE)
    workers = [_worker(f"tune-test-barrier-{study.id}:2") for _ in range(2)]  # both up, then both work
    for proc in workers:
        assert proc.wait(timeout=120) == 0
    done = get_study(study.id)
    assert done.status == "finished", done.error
    trials = [t for t in _trials(study.id) if t.state == TrialState.COMPLETE]
    assert len(_trials(study.id)) == 4
    worker = {t.number: storage.run_record(t)["worker"] for t in trials}
    assert len(set(worker.values())) == 2, "both workers ran trials"
    spans = [(t.number, worker[t.number][:6], str(t.datetime_start.time()),
              str(t.datetime_complete.time())) for t in trials]
    assert any(_overlap(a, b) for a in trials for b in trials if a.number < b.number
               and worker[a.number] != worker[b.number]), f"no two trials at once: {spans}"


@pytest.mark.slow
def test_a_trial_of_a_killed_worker_is_marked_failed_and_the_resumed_study_goes_on(
    store_dir: Path,
) -> None:
    seed(2.1, ar1=0.3)
    slow = {"params": {"n_estimators": {"low": 200, "high": 250}, "max_depth": {"low": 5, "high": 6}},
            "features": SPACE["features"], "min_features": 1}
    study = start_study("direction_tuned", trials=2, minutes=5, options=options(), search_space=slow)
    worker = _worker()
    try:
        deadline = time.monotonic() + 60
        while not any(t.state == TrialState.RUNNING and t.number == 1 for t in _trials(study.id)):
            assert worker.poll() is None and time.monotonic() < deadline, "no sampled trial started"
            time.sleep(0.05)
        family = [psutil.Process(worker.pid), *psutil.Process(worker.pid).children(recursive=True)]
        for proc in family:  # the worker and its work horse, as a crash would
            os.kill(proc.pid, signal.SIGKILL)
        psutil.wait_procs(family, timeout=10)
    finally:
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGKILL)
    assert [t.state for t in _trials(study.id)] == [TrialState.COMPLETE, TrialState.RUNNING]
    assert get_study(study.id).status == "running", "no job is left to finish the study"
    time.sleep(2.5)  # its heartbeat goes stale

    resume_study(study.id, trials=1)
    run_tune_worker()  # the new trial job fails the dead trial, runs one more, and finishes the study
    done = get_study(study.id)
    states = [t.state for t in _trials(study.id)]
    assert done.status == "finished", (done.error, states, done.budget)
    assert states == [TrialState.COMPLETE, TrialState.FAIL, TrialState.COMPLETE]
    assert done.result["trials"] == 3 and done.result["states"] == {"complete": 2, "fail": 1}


def test_a_trial_whose_worker_died_before_its_first_beat_is_failed_after_the_grace_period(
    store_dir: Path,
) -> None:
    """Optuna's own sweep skips a running trial with no heartbeat row (its worker killed between the trial's
    creation and its first beat); left running, it would keep its study from ever finishing."""
    study = storage.create("never_beaten")
    with warnings.catch_warnings():  # Optuna warns that a heartbeat storage is meant for `optimize`
        warnings.simplefilter("ignore", UserWarning)
        orphan = study.ask()  # RUNNING, and no heartbeat thread ever beats for it
        time.sleep(2.2)  # past the 2 s grace period
        fresh = study.ask()
    storage.fail_stale(study)
    states = {t.number: t.state for t in study.get_trials(deepcopy=False)}
    assert states == {orphan.number: TrialState.FAIL, fresh.number: TrialState.RUNNING}
