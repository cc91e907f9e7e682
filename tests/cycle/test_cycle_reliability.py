"""One cycle at a time, a failing build, and recovery of a cycle whose lock expired."""

from __future__ import annotations

import httpx
import pytest
from sqlmodel import select

from app.core.db import session_scope
from app.services.cycle import CycleRunning, get_cycle, recover_interrupted, start_cycle
from app.services.cycle import lock as cycle_lock
from app.tables.models import ModelEvent, ModelRecord
from tests.api.server import serve
from tests.cycle.helpers import definition, one_per_kind, run_workers, seed_candles


def test_second_cycle_while_one_runs_gets_409_with_the_running_id(monkeypatch: pytest.MonkeyPatch) -> None:
    from app.core.config import reset_settings

    monkeypatch.setenv("OPERATOR_API_KEY", "op-key-for-tests-0123456789")
    reset_settings()
    seed_candles(days=1)
    with serve() as url, httpx.Client(base_url=url) as client:
        headers = {"X-API-Key": "op-key-for-tests-0123456789"}
        first = client.post("/cycles", json={"window_days": 1}, headers=headers)
        assert first.status_code == 202, first.text
        running = first.json()["id"]
        second = client.post("/cycles", json={}, headers=headers)
        assert second.status_code == 409
        assert second.json()["id"] == running
        with pytest.raises(CycleRunning) as caught:
            start_cycle("cli")
        assert caught.value.running_id == running
        shown = client.get(f"/cycles/{running}", headers=headers)
        assert shown.status_code == 200 and shown.json()["status"] == "queued"
        assert client.get("/cycles/nope", headers=headers).status_code == 404


def test_a_stale_lock_expires_and_its_cycle_is_marked_interrupted(monkeypatch: pytest.MonkeyPatch) -> None:
    import time

    from app.core.config import reset_settings

    monkeypatch.setenv("CYCLE_LEASE_SECONDS", "0.3")
    reset_settings()
    seed_candles(days=1)
    cycle = start_cycle("operator", {"definitions": one_per_kind()[:1], "window_days": 1})
    cycle_lock.get_redis().delete(cycle_lock.lock_key())  # what the expiry does after the last heartbeat
    assert recover_interrupted() == [], "no job has been silent for the lease yet"
    time.sleep(0.4)
    assert recover_interrupted() == [cycle.id]
    assert get_cycle(cycle.id).status == "interrupted"
    run_workers()  # its leftover job sees the cycle is over and does nothing
    with session_scope() as session:
        assert session.exec(select(ModelRecord)).all() == []
    assert start_cycle("operator", {"definitions": one_per_kind()[:1], "window_days": 1}).status == "queued"


def test_lock_expires_on_its_own_without_heartbeat() -> None:
    assert cycle_lock.acquire("a", ttl=1) is None
    assert cycle_lock.acquire("b", ttl=1) == "a"
    assert cycle_lock.refresh("b") is False
    import time

    time.sleep(1.2)
    assert cycle_lock.acquire("b", ttl=1) is None


def test_a_failing_build_marks_its_model_failed_and_the_cycle_partial() -> None:
    seed_candles(days=1)
    broken = definition("xgboost", "broken_model")
    broken["features"] = ["returns", "rsi_5000"]  # a warm-up longer than the stored day: BadInput
    good = definition("gradient_boosting", "good_model")
    cycle = start_cycle("operator", {"definitions": [broken, good], "window_days": 1})
    run_workers()

    done = get_cycle(cycle.id)
    assert done.status == "partial"
    assert done.progress["broken_model"]["state"] == "failed"
    assert "no labelled rows" in done.progress["broken_model"]["error"]
    assert done.progress["good_model"]["state"] == "succeeded"
    with session_scope() as session:
        rows = {r.family: r for r in session.exec(select(ModelRecord)).all()}
        failed_events = session.exec(select(ModelEvent).where(ModelEvent.event == "failed")).all()
    assert rows["broken_model"].status == "failed" and "no labelled rows" in rows["broken_model"].error
    assert rows["good_model"].status == "active"
    assert [e.model_name for e in failed_events] == [rows["broken_model"].name]


def test_editing_the_models_file_mid_cycle_changes_only_the_next_cycle(tmp_path, store_dir) -> None:
    import yaml

    seed_candles(days=1)
    models_file = tmp_path / "models.yaml"
    models_file.write_text(yaml.safe_dump({"models_to_train": [definition("xgboost", "before_edit")]}))
    cycle = start_cycle("cli", {"models_file": str(models_file), "window_days": 1, "ingest": False})
    models_file.write_text(yaml.safe_dump({"models_to_train": [definition("xgboost", "after_edit")]}))

    run_workers()

    finished = get_cycle(cycle.id)
    assert finished.status == "succeeded", finished.errors
    assert list(finished.progress) == ["before_edit"]
    with session_scope() as session:
        assert [r.family for r in session.exec(select(ModelRecord)).all()] == ["before_edit"]


def test_a_retrain_whose_job_was_lost_fails_and_the_cycle_ends_partial() -> None:
    from app.services.cycle import finish_cycle
    from app.tables.cycles import Cycle

    with session_scope() as session:
        session.add(Cycle(id="lost-retrain", trigger="cli", status="running", stage="retrain", progress={
            "direction_a": {"stage": "build", "state": "succeeded"},
            "retrain:direction_a_001": {"stage": "retrain", "state": "running"},
        }))

    finished = finish_cycle("lost-retrain")

    assert finished.status == "partial"
    assert finished.progress["retrain:direction_a_001"]["state"] == "failed"
    assert "worker lost" in finished.progress["retrain:direction_a_001"]["error"]
    assert finished.progress["direction_a"]["state"] == "succeeded"
