"""Every write of a cycle job carries its cycle's fencing token; once a newer cycle holds one, the old
job's writes are refused whole, before anything changes."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from app.core.config import reset_settings
from app.core.redis import get_redis
from app.services import models as svc
from app.services.cycle import get_cycle, start_cycle
from app.services.cycle import lock as cycle_lock
from app.services.cycle.plan import apply_plan
from app.services.cycle.rows import update
from tests.api.ml_setup import Trained, save
from tests.cycle.helpers import definition


def test_a_plan_or_row_write_carrying_a_stale_token_is_refused_and_changes_nothing(
    trained: Trained, store_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    champion = save(trained, "direction_small", status="active")
    challenger = save(trained, "direction_deep", status="candidate")
    options = {"definitions": [definition("xgboost", "dir_x")], "window_days": 1, "ingest": False}
    first = start_cycle("operator", options)
    monkeypatch.setenv("CYCLE_LEASE_SECONDS", "0.2")
    reset_settings()
    get_redis().delete(cycle_lock.lock_key())  # the first cycle's lock is lost and its job falls silent
    time.sleep(0.3)
    second = start_cycle("operator", options)
    assert second.fence == first.fence + 1

    stale = cycle_lock.Lease(first.id, first.fence)
    token = cycle_lock._current.set(stale)  # what `run_stage` sets up for the first cycle's job
    try:
        with pytest.raises(cycle_lock.LockLost, match="stale"):
            apply_plan(first.id, {challenger: ("active", "better", {}), champion: ("archived", "worse", {})},
                       record=lambda c: c.results.__setitem__("ranking", {"applied": True}))
        with pytest.raises(cycle_lock.LockLost):
            update(first.id, lambda c: c.results.__setitem__("late", True))
    finally:
        cycle_lock._current.reset(token)

    assert svc.get_model(champion).status == "active" and svc.get_model(challenger).status == "candidate"
    assert "ranking" not in get_cycle(first.id).results and "late" not in get_cycle(first.id).results
    with pytest.raises(cycle_lock.LockLost):
        with cycle_lock.hold(first.id, first.fence):  # a job of the first cycle starting now stops at once
            pass
    with cycle_lock.hold(second.id, second.fence):  # the newest holds its lease
        apply_plan(second.id, {challenger: ("active", "better", {})})
    assert svc.get_model(challenger).status == "active"
