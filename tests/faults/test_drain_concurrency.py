"""Draining the prediction log is safe under any concurrency: RQ promises at-least-once, not exactly-once.

The 1-minute drain job and the 5-minute score job both drain, and on several workers they overlap. Every
logged prediction must reach the `predictions` table exactly once, and no drain may fail.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from pathlib import Path

from sqlmodel import func, select

from app.core.db import session_scope
from app.core.redis import get_redis
from app.services import prediction_log
from app.tables.predictions import Prediction

ROOT = Path(__file__).resolve().parents[2]


def _entry() -> dict:
    now = int(time.time() * 1000)
    return {"request_id": uuid.uuid4().hex, "model_name": "direction_small_001", "kind": "direction",
            "version": 1, "symbol": "BTC-USDT", "timeframe": "1m", "horizon": 3, "as_of_ts": now,
            "due_ts": now + 240_000, "served_ts": now, "data_source": "simulated",
            "answer": {"direction": "UP", "confidence": 0.6}, "ensemble_id": None}


def _push(count: int) -> set[str]:
    entries = [_entry() for _ in range(count)]
    get_redis().rpush(prediction_log.log_key(), *[json.dumps(e) for e in entries])
    return {e["request_id"] for e in entries}


def _stored() -> tuple[int, set[str]]:
    with session_scope() as session:
        total = session.exec(select(func.count()).select_from(Prediction)).one()
        ids = set(session.exec(select(Prediction.request_id)).all())
    return int(total), ids


def _drain_together(drains: int, batch_size: int) -> list[BaseException]:
    errors: list[BaseException] = []
    start = threading.Barrier(drains)

    def drain() -> None:
        start.wait()
        try:
            prediction_log.drain_predictions(batch_size=batch_size)
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            errors.append(exc)

    threads = [threading.Thread(target=drain) for _ in range(drains)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return errors


def test_overlapping_drains_store_every_entry_once_and_none_fails(database: str) -> None:
    pushed: set[str] = set()
    errors: list[BaseException] = []
    for _ in range(12):
        pushed |= _push(600)
        errors += _drain_together(drains=3, batch_size=200)
    errors += _drain_together(drains=1, batch_size=200)  # whatever a failed drain left behind

    total, ids = _stored()
    assert errors == [], f"{len(errors)} drains failed, first: {errors[0]!r}"
    assert ids == pushed, f"{len(pushed - ids)} of {len(pushed)} logged predictions were lost"
    assert total == len(pushed), "a prediction was stored twice"
    assert get_redis().llen(prediction_log.log_key()) == 0


def test_drains_racing_producers_lose_nothing(database: str) -> None:
    pushed: set[str] = set()
    producing = threading.Event()
    producing.set()

    def produce() -> None:
        for _ in range(100):  # 3000 entries over about half a second
            pushed.update(_push(30))
            time.sleep(0.005)
        producing.clear()

    errors: list[BaseException] = []

    def drain() -> None:
        while producing.is_set() or get_redis().llen(prediction_log.log_key()):
            try:
                prediction_log.drain_predictions(batch_size=100)
            except BaseException as exc:  # noqa: BLE001 - reported by the test
                errors.append(exc)
            time.sleep(0.01)

    threads = [threading.Thread(target=produce)] + [threading.Thread(target=drain) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    _, ids = _stored()
    assert errors == []
    assert ids == pushed


_KILLED_DRAIN = textwrap.dedent(
    """
    import os, signal
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    inserted = []

    @event.listens_for(Engine, "before_cursor_execute")
    def _mark(conn, cursor, statement, params, context, executemany):
        if statement.lstrip().upper().startswith("INSERT INTO PREDICTIONS"):
            inserted.append(1)

    @event.listens_for(Engine, "commit")
    def _die(conn):
        if inserted:
            os.kill(os.getpid(), signal.SIGKILL)  # the rows were sent, the commit never happens

    from app.services.prediction_log import drain_predictions
    drain_predictions(batch_size=300)
    """
)


def test_a_drain_killed_before_its_commit_loses_nothing(database: str) -> None:
    pushed = _push(900)
    child = subprocess.run([sys.executable, "-c", _KILLED_DRAIN], cwd=ROOT, capture_output=True, text=True,
                           timeout=120, env={**os.environ, "LOG_LEVEL": "WARNING"})
    assert child.returncode == -signal.SIGKILL, child.stderr

    prediction_log.drain_predictions(stale_after_s=0)  # the next drain takes over what the dead one held

    _, ids = _stored()
    assert ids == pushed
