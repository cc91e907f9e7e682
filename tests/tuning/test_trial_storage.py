"""What a trial keeps of Optuna's storage between jobs: the process's cache of finished trials never hides a
trial another process wrote, a forked work horse never uses its parent's pooled connections, and a trial's
timings read the same from the old attributes and the new one."""

from __future__ import annotations

import os
import uuid

import optuna
import pytest
from optuna.trial import TrialState

from app.services.tuning import storage


def _other_process_storage() -> optuna.storages.BaseStorage:
    """A cache of its own (as another worker's) over the same database."""
    return optuna.storages.get_storage(storage.storage())


@pytest.mark.filterwarnings("ignore:Heartbeat of storage")
def test_the_cached_storage_sees_what_another_process_writes() -> None:
    name = f"mlpipe-test-cache-{uuid.uuid4().hex[:8]}"
    study = storage.create(name)
    study.enqueue_trial({"x": 1.0})
    trial = study.ask({"x": optuna.distributions.FloatDistribution(0, 2)})
    study.tell(trial, 0.5)
    assert [t.state for t in storage.load(name).get_trials(deepcopy=False)] == [TrialState.COMPLETE]

    other = optuna.load_study(study_name=name, storage=_other_process_storage())
    running = other.ask({"x": optuna.distributions.FloatDistribution(0, 2)})
    mine = storage.load(name)
    assert [t.state for t in mine.get_trials(deepcopy=False)] == [TrialState.COMPLETE, TrialState.RUNNING]
    other.tell(running, state=TrialState.FAIL)  # another worker marks it failed: this process sees it
    assert [t.state for t in mine.get_trials(deepcopy=False)] == [TrialState.COMPLETE, TrialState.FAIL]
    assert storage.load(name).get_trials(deepcopy=False)[0] is mine.get_trials(deepcopy=False)[0]  # cached


def test_a_forked_child_opens_its_own_connections() -> None:
    rdb = storage.storage()
    read, write = os.pipe()
    with rdb.engine.connect() as conn:  # the parent holds a pooled connection while it forks
        conn.exec_driver_sql("SELECT 1")
        pid = os.fork()
        if pid == 0:  # the child: a fresh pool (nothing checked out), and a connection of its own that works
            try:
                fresh = rdb.engine.pool.checkedout() == 0
                with rdb.engine.connect() as own:
                    ok = fresh and own.exec_driver_sql("SELECT 1").scalar() == 1
                os.write(write, b"1" if ok else b"0")
            finally:
                os._exit(0)
        os.close(write)
        os.waitpid(pid, 0)
        assert os.read(read, 1) == b"1", "the forked child shared its parent's pool"
        assert conn.exec_driver_sql("SELECT 1").scalar() == 1  # the parent's connection is intact


def test_a_trials_run_record_reads_old_and_new_attributes() -> None:
    timings = {"seconds": 0.3, "fit_seconds": 0.2, "worker": "w1"}
    old = optuna.trial.create_trial(value=0.1, user_attrs=dict(timings))
    new = optuna.trial.create_trial(value=0.1, user_attrs={storage.RUN_ATTR: dict(timings)})
    assert storage.run_record(old) == storage.run_record(new) == timings
