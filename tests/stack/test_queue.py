"""Jobs travel through the real Redis queue to a real RQ worker and come back finished."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from rq.cron import CronScheduler
from rq.job import JobStatus

from app.core.errors import BadInput
from app.core.queues import all_queue_names, get_queue, queue_name
from app.core.redis import get_redis
from workers.jobs import ingest_tick_job, ping_job
from workers.worker import PromptSimpleWorker

MLPIPE = Path(sys.executable).with_name("mlpipe")


def test_a_job_runs_on_an_in_process_worker_and_returns_its_result() -> None:
    queue = get_queue("default")
    job = queue.enqueue(ping_job, 7)
    assert job.get_status() == JobStatus.QUEUED

    worked = PromptSimpleWorker([queue], connection=get_redis()).work(burst=True)

    assert worked
    assert job.get_status(refresh=True) == JobStatus.FINISHED
    result = job.return_value(refresh=True)
    assert result["square"] == 49
    assert len(queue) == 0


def test_mlpipe_worker_runs_the_jobs_of_its_queues_in_another_process_and_leaves_the_rest() -> None:
    served = [get_queue(kind).enqueue(ping_job, n) for n, kind in enumerate(["ingest", "default"], 2)]
    other = get_queue("train").enqueue(ping_job, 5)

    done = subprocess.run(
        [str(MLPIPE), "worker", "--burst", "--queues", "ingest,default"],
        env=os.environ.copy(), capture_output=True, text=True, timeout=60,
    )

    assert done.returncode == 0, done.stderr
    for n, job in enumerate(served, 2):
        assert job.get_status(refresh=True) == JobStatus.FINISHED, done.stderr
        result = job.return_value(refresh=True)
        assert result["square"] == n * n
        assert result["pid"] != os.getpid()
    assert other.get_status(refresh=True) == JobStatus.QUEUED


def test_queue_names_carry_the_prefix_and_unknown_names_are_rejected(monkeypatch: pytest.MonkeyPatch) -> None:
    from app.core.config import reset_settings

    monkeypatch.setenv("QUEUE_PREFIX", "blue")
    reset_settings()
    try:
        assert get_queue("train").name == "blue:train"
        assert get_queue("blue:cycle").name == "blue:cycle"
        assert all_queue_names()[0] == "blue:ingest"
        with pytest.raises(BadInput, match="known: ingest, cycle, train, tune, default"):
            queue_name("trian")
    finally:
        monkeypatch.delenv("QUEUE_PREFIX")
        reset_settings()


def test_the_cron_config_schedules_the_ingest_tick_every_minute_on_the_ingest_queue() -> None:
    cron = CronScheduler(connection=get_redis())
    cron.load_config_from_file("workers.cron_config")

    jobs = {job.func_name: job for job in cron.get_jobs()}
    tick = jobs[f"{ingest_tick_job.__module__}.{ingest_tick_job.__name__}"]
    assert tick.queue_name == queue_name("ingest")
    assert tick.next_enqueue_time is not None
    assert tick.next_enqueue_time.second == 0  # minute boundaries
