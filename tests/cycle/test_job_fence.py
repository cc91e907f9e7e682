"""A try of a cycle job declared lost (what RQ's sweep does while its worker is cut off) writes nothing more:
no model, no cycle row, no promotion; the job's next try writes as usual. Real database, real store.

The sweep runs in another process in production; here its callback runs in another thread (no lease).
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sqlmodel import select

from app.core.db import session_scope
from app.services.cycle import flow, get_cycle, start_cycle
from app.services.cycle.lock import write_fence
from app.services.cycle.plan import apply_plan
from app.services.cycle.rows import update
from app.services.models import get_model, save_model
from app.tables.models import ModelRecord
from tests.cycle.helpers import definition
from tests.services.test_models_service import TinyLinear

LOST = "its worker stopped beating for 60 s (killed, or its host cut off): declared lost"


@pytest.fixture()
def fitted() -> TinyLinear:
    rows = np.random.default_rng(3).normal(size=(200, 3))
    frame = pd.DataFrame(rows, columns=["rsi_14", "atr_14", "returns"])
    return TinyLinear().fit(frame, frame.to_numpy() @ np.array([0.5, -1.0, 2.0]))


@pytest.fixture()
def cycle_id() -> str:
    options = {"definitions": [definition("xgboost", "d")], "window_days": 1, "ingest": False}
    return start_cycle("operator", options).id


def _elsewhere(call: Any, *args: Any) -> None:
    thread = threading.Thread(target=call, args=args)
    thread.start()
    thread.join(timeout=30)


def _rows() -> list[ModelRecord]:
    with session_scope() as session:
        return list(session.exec(select(ModelRecord)).all())


def test_a_build_try_declared_lost_saves_nothing_and_the_next_try_saves(
    store_dir: Path, cycle_id: str, fitted: TinyLinear
) -> None:
    def lost_try() -> str:
        _elsewhere(flow.training_job_failed, cycle_id, "build", "d", True, LOST)  # the sweep, meanwhile
        return save_model(fitted, name="d", cycle_id=cycle_id, fence=write_fence(cycle_id)).name

    assert flow.run_stage(cycle_id, "build:d", lost_try) is None  # stopped quietly, before writing
    assert _rows() == [] and not list(store_dir.glob("model_*")), "the lost try left a model"
    cycle = get_cycle(cycle_id)
    assert cycle.progress["d"]["state"] == "queued" and cycle.progress["d"]["retried_because"] == LOST
    assert cycle.errors[-1]["level"] == "warning" and "retried" in cycle.errors[-1]["message"]

    def next_try() -> str:
        return save_model(fitted, name="d", cycle_id=cycle_id, fence=write_fence(cycle_id)).name

    assert flow.run_stage(cycle_id, "build:d", next_try) == "d_001"
    assert [r.name for r in _rows()] == ["d_001"]


def test_a_lost_try_of_the_last_attempt_marks_the_model_failed(cycle_id: str) -> None:
    flow.training_job_failed(cycle_id, "build", "d", False, LOST)
    cycle = get_cycle(cycle_id)
    assert cycle.progress["d"]["state"] == "failed" and "no try left" in cycle.progress["d"]["error"]
    assert cycle.errors[-1]["level"] == "error"  # so the cycle ends partial, with the reason


def test_a_rank_try_declared_lost_promotes_nothing_nor_writes_the_cycle(
    store_dir: Path, cycle_id: str, fitted: TinyLinear
) -> None:
    name = save_model(fitted, name="d", cycle_id=cycle_id).name
    writes: list[str] = []

    def lost_rank() -> None:
        _elsewhere(flow.stage_job_failed, cycle_id, "rank", True, "AbandonedJobError: declared lost")
        try:
            update(cycle_id, lambda c: c.results.__setitem__("ranking", {"late": True}))
        except Exception as exc:  # noqa: BLE001 - what it raised is what the job would stop on
            writes.append(type(exc).__name__)
        apply_plan(cycle_id, {name: ("active", "champion", {})})

    assert flow.run_stage(cycle_id, "rank", lost_rank) is None
    assert writes == ["LockLost"]
    assert get_model(name).status == "candidate", "a lost rank try promoted a model"
    assert "ranking" not in get_cycle(cycle_id).results
