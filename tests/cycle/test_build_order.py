"""A cycle queues its builds longest first, by each definition's last recorded build time, so two workers
finish together instead of one waiting on the long build queued last. Real database, real Redis queue."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from rq.job import Job

from app.core.db import session_scope
from app.core.queues import get_queue
from app.services.cycle import flow, start_cycle
from app.tables.cycles import Cycle
from tests.cycle.helpers import definition

NAMES = ["direction", "risk", "price", "momentum", "volatility"]


def _timed(seconds: dict[str, float]) -> Cycle:
    jobs = {f"build:{name}": {"seconds": s} for name, s in seconds.items()}
    return Cycle(id="c", trigger="operator", timings={"jobs": {**jobs, "rank": {"seconds": 99.0}}})


def test_the_longest_build_goes_first_and_unknown_ones_before_any() -> None:
    seconds = {"direction": 2.1, "risk": 10.9, "price": 15.5, "momentum": 5.8}
    order = flow.longest_first(NAMES, seconds)
    assert [NAMES[i] for i in order] == ["volatility", "price", "risk", "momentum", "direction"]


def test_ties_keep_the_declared_order() -> None:
    assert flow.longest_first(["a", "b", "c"], {"a": 1.0, "b": 3.0, "c": 1.0}) == [1, 0, 2]
    assert flow.longest_first(["a", "b"], {}) == [0, 1]


def test_the_newest_recorded_time_counts_and_other_jobs_are_ignored() -> None:
    newer = _timed({"price": 4.0})
    older = _timed({"price": 20.0, "risk": 7.0})
    assert flow.last_build_seconds([newer, older]) == {"price": 4.0, "risk": 7.0}


def test_a_cycle_queues_its_builds_by_the_last_cycles_times(store_dir: Path) -> None:
    times = {"direction": 2.1, "risk": 10.9, "price": 15.5, "momentum": 5.8, "volatility": 6.1}
    with session_scope(write=True) as session:  # the cycle before, finished
        session.add(Cycle(id="before", trigger="schedule", status="succeeded",
                          created_ts=datetime.now(UTC) - timedelta(hours=12),
                          timings={"jobs": {f"build:{n}": {"seconds": s} for n, s in times.items()}}))
    definitions = [definition("xgboost", name) for name in NAMES]
    cycle_id = start_cycle("operator", {"definitions": definitions, "window_days": 1, "ingest": False}).id
    jobs = flow.enqueue_builds(cycle_id, NAMES)

    queued = get_queue("train").get_job_ids()
    assert queued == [job.id for job in jobs]
    built = [Job.fetch(job_id, connection=get_queue("train").connection).args[1] for job_id in queued]
    assert built == ["price", "risk", "volatility", "momentum", "direction"]
    assert queued[0] == f"cycle-{cycle_id}-build-2"  # ids keep the declared index: a retried start finds them
