"""Served predictions: logged off the request path, stored in batches, scored once their horizon passed.

Path of one prediction: the request puts a dict on an in-process queue (no I/O); a daemon thread pushes
the queue to the Redis list `<prefix>:predictions:log` in batches; the `drain_predictions` job moves the
list into the `predictions` table (so they survive API restarts, and a replayed batch is a no-op thanks to
the unique request id); `score_predictions` compares each due prediction with the stored candles and
updates each model's `live_performance`.

What counts as correct: direction and momentum, the answered class equals the realised label; price, the
predicted move has the sign of the realised log return. Risk and volatility record the realised value in
`outcome` but have no right/wrong, so they do not count in `accuracy` or `trades_evaluated`.
"""

from __future__ import annotations

import json
import math
import queue
import threading
import time
from collections import defaultdict
from typing import Any

import numpy as np
from redis.exceptions import RedisError
from sqlalchemy import func
from sqlmodel import select

from app.core.background import BackgroundLoop
from app.core.config import get_settings
from app.core.logging import get_logger
from app.core.metrics import record_prediction_log_dropped

log = get_logger(__name__)

_FLUSH_SECONDS = 0.2
_MAX_BATCH = 500
_GIVE_UP_MS = 86_400_000  # an outcome still missing a day after it was due is never coming


def log_key() -> str:
    return f"{get_settings().queue_prefix}:predictions:log"


class PredictionLog:
    """An in-process buffer flushed to Redis by one daemon thread."""

    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[dict[str, Any]] = queue.SimpleQueue()
        self._loop = BackgroundLoop("prediction-log", self._run)

    def put(self, entry: dict[str, Any]) -> None:
        self._queue.put(entry)
        if not self._loop.running:
            self.start()

    def start(self) -> None:
        self._loop.start()

    def stop(self) -> None:
        self._loop.stop()
        self.flush()

    def flush(self) -> int:
        batch: list[dict[str, Any]] = []
        while len(batch) < _MAX_BATCH:
            try:
                batch.append(self._queue.get_nowait())
            except queue.Empty:
                break
        if not batch:
            return 0
        from app.core.redis import get_redis

        try:
            get_redis().rpush(log_key(), *[json.dumps(e) for e in batch])
        except RedisError as exc:
            log.warning("predictions_not_logged", count=len(batch), error=str(exc))
            record_prediction_log_dropped(len(batch))
            return 0
        return len(batch)

    def _run(self, stopping: threading.Event) -> None:
        while not stopping.is_set():
            if self.flush() < _MAX_BATCH:
                stopping.wait(_FLUSH_SECONDS)


_log = PredictionLog()


def get_prediction_log() -> PredictionLog:
    return _log


def drain_predictions(batch_size: int = 1000) -> int:
    """Move logged predictions from Redis into the `predictions` table; returns how many rows were added.

    Entries leave Redis only after their batch is committed (read, insert, then trim), so a crash in
    between replays the batch, which the unique request id turns into a no-op.
    """
    from app.core.db import session_scope
    from app.core.redis import get_redis
    from app.tables.predictions import Prediction

    redis = get_redis()
    added = 0
    while True:
        raw = redis.lrange(log_key(), 0, batch_size - 1)
        if not raw:
            return added
        entries = [json.loads(r) for r in raw]
        ids = [e["request_id"] for e in entries]
        with session_scope() as session:
            known = set(
                session.exec(select(Prediction.request_id).where(Prediction.request_id.in_(ids))).all()
            )
            for e in entries:
                if e["request_id"] in known:
                    continue
                known.add(e["request_id"])
                session.add(Prediction(**e))
                added += 1
        redis.ltrim(log_key(), len(raw), -1)


def _positive(kind: str, answer: dict[str, Any]) -> bool | None:
    if kind == "direction":
        return answer.get("direction") == "UP"
    if kind == "momentum":
        return answer.get("state") == "accelerating"
    return None


def _score_group(model: Any, kind: str, rows: list[Any], candles: Any) -> None:
    from app.ml.dataset import context_frame

    label = model.target(candles)
    close = context_frame(candles)["close"]
    positions = {int(ts): i for i, ts in enumerate(candles.index.as_unit("ms").asi8)}
    for row in rows:
        i = positions.get(int(row.as_of_ts))
        if i is None or not np.isfinite(label.iloc[i]):
            continue
        outcome = float(label.iloc[i])
        row.outcome, row.scored = outcome, True
        positive = _positive(kind, row.answer or {})
        if positive is not None:
            row.correct = bool(positive == (outcome >= 0.5))
        elif kind == "price" and (row.answer or {}).get("predicted_price"):
            predicted = math.log(float(row.answer["predicted_price"]) / float(close.iloc[i]))
            row.correct = bool(np.sign(predicted) == np.sign(outcome))


def score_predictions(now_ms: int | None = None) -> dict[str, Any]:
    """Score every prediction whose horizon has passed, then refresh the models' live_performance."""
    from app.core.db import session_scope
    from app.data.candles import last_candle_ts, load_candles
    from app.data.frames import TIMEFRAME_MS
    from app.features import resample
    from app.services.models import load_model
    from app.tables.predictions import Prediction

    now_ms = now_ms or int(time.time() * 1000)
    touched: set[str] = set()
    scored = 0
    with session_scope() as session:
        due = session.exec(select(Prediction).where(Prediction.scored == False)).all()  # noqa: E712
        groups: dict[tuple[str, str], list[Any]] = defaultdict(list)
        for row in due:
            if row.symbol is None:
                row.scored = True
                continue
            groups[(row.model_name, row.symbol)].append(row)
        for (name, symbol), rows in groups.items():
            last = last_candle_ts(symbol)
            ready = [r for r in rows if last is not None and r.due_ts <= last]
            for r in rows:
                if r not in ready and r.due_ts + _GIVE_UP_MS < now_ms:
                    r.scored = True
            if not ready:
                continue
            try:
                model = load_model(name)
            except Exception as exc:  # a model deleted or unloadable: its predictions cannot be scored
                log.warning("prediction_model_unavailable", model=name, error=str(exc))
                continue
            tf = ready[0].timeframe
            span = max(r.horizon for r in ready) + 70
            start = min(r.as_of_ts for r in ready) - span * TIMEFRAME_MS[tf]
            end = max(r.due_ts for r in ready)
            candles = load_candles(symbol, "1m", start_ts=start, end_ts=end)
            if tf != "1m":
                candles = resample(candles, tf)
            _score_group(model, ready[0].kind, ready, candles)
            scored += sum(1 for r in ready if r.scored)
            touched.add(name)
        for row in due:
            session.add(row)
    for name in sorted(touched):
        _refresh_live(name)
    return {"scored": scored, "models": sorted(touched)}


def _refresh_live(name: str) -> None:
    from app.core.db import session_scope
    from app.services.models import update_live_performance
    from app.tables.predictions import Prediction

    with session_scope() as session:
        stmt = select(func.count(), func.sum(func.cast(Prediction.correct, _int_type()))).where(
            Prediction.model_name == name, Prediction.correct.is_not(None)
        )
        total, right = session.exec(stmt).one()
    total = int(total or 0)
    accuracy = (float(right or 0) / total) if total else None
    update_live_performance(name, accuracy, total)


def _int_type() -> Any:
    from sqlalchemy import Integer

    return Integer
