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
import threading
import time
import uuid
from collections import defaultdict, deque
from typing import Any

import numpy as np
from sqlalchemy import func
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import select

from app.core.background import BackgroundLoop
from app.core.config import get_settings
from app.core.logging import get_logger
from app.core.metrics import record_prediction_log_drop

log = get_logger(__name__)

_FLUSH_SECONDS = 0.2
_MAX_BATCH = 500
_GIVE_UP_MS = 86_400_000  # an outcome still missing a day after it was due is never coming


def log_key() -> str:
    return f"{get_settings().queue_prefix}:predictions:log"


class PredictionLog:
    """A bounded in-process buffer flushed to Redis by one daemon thread.

    `put` never blocks and never does I/O. While Redis is slow or down, entries wait here (a failed batch
    goes back to the front); past `PREDICTION_LOG_CAPACITY` new ones are dropped, and every dropped entry is
    counted in `/metrics` (`mlpipe_prediction_log_dropped_total{reason}`), so no loss is silent.
    """

    def __init__(self, capacity: int | None = None) -> None:
        self._capacity = capacity
        self._buffer: deque[dict[str, Any]] = deque()
        self._lock = threading.Lock()
        self._loop = BackgroundLoop("prediction-log", self._run)
        self._failing_since: float | None = None

    @property
    def capacity(self) -> int:
        return self._capacity or get_settings().prediction_log_capacity

    def __len__(self) -> int:
        return len(self._buffer)

    def put(self, entry: dict[str, Any]) -> None:
        with self._lock:
            full = len(self._buffer) >= self.capacity
            if not full:
                self._buffer.append(entry)
        if full:
            record_prediction_log_drop("queue_full")
        if not self._loop.running:
            self.start()

    def start(self) -> None:
        self._loop.start()

    def stop(self) -> None:
        """Stop the thread, then flush what is left; what Redis does not take now is counted as dropped."""
        self._loop.stop(timeout=1.0)
        while self.flush() > 0:
            pass
        with self._lock:
            left = len(self._buffer)
            self._buffer.clear()
        if left:
            record_prediction_log_drop("shutdown", left)
            log.warning("predictions_not_logged_at_shutdown", count=left)

    def flush(self) -> int:
        """Push one batch to Redis; returns how many entries it pushed (0 when Redis refused them)."""
        with self._lock:
            batch = [self._buffer.popleft() for _ in range(min(_MAX_BATCH, len(self._buffer)))]
        if not batch:
            return 0
        from app.core.redis import get_redis

        try:
            get_redis().rpush(log_key(), *[json.dumps(e) for e in batch])
        except Exception as exc:  # Redis down or hung, or its client closed under us: keep the batch
            self._put_back(batch)
            if self._failing_since is None:
                self._failing_since = time.monotonic()
                log.warning("predictions_not_logged_yet", count=len(batch), error=str(exc))
            return 0
        if self._failing_since is not None:
            log.info("predictions_logged_again", after_s=round(time.monotonic() - self._failing_since, 1))
            self._failing_since = None
        return len(batch)

    def _put_back(self, batch: list[dict[str, Any]]) -> None:
        with self._lock:
            room = max(0, self.capacity - len(self._buffer))
            kept = batch[:room]
            self._buffer.extendleft(reversed(kept))
        if len(batch) > len(kept):
            record_prediction_log_drop("queue_full", len(batch) - len(kept))

    def _run(self, stopping: threading.Event) -> None:
        while not stopping.is_set():
            pushed = self.flush()
            if pushed == 0 and self._failing_since is not None:
                stopping.wait(1.0)  # Redis refused: back off instead of hammering it
            elif pushed < _MAX_BATCH:
                stopping.wait(_FLUSH_SECONDS)


_log = PredictionLog()


def get_prediction_log() -> PredictionLog:
    return _log


# Move up to ARGV[1] entries from the log to this drain's own processing list, and note when it claimed
# them: one atomic step, so two drains never hold the same entry and no entry is ever in neither list.
_CLAIM = """
local items = redis.call('LRANGE', KEYS[1], 0, tonumber(ARGV[1]) - 1)
if #items > 0 then
  redis.call('LTRIM', KEYS[1], #items, -1)
  redis.call('RPUSH', KEYS[2], unpack(items))
  redis.call('ZADD', KEYS[3], ARGV[2], KEYS[2])
end
return items
"""
_STALE_CLAIM_SECONDS = 300.0  # longer than a drain job may run (its job timeout is 120 s)
_DRAIN_SECONDS = 60.0  # one run stops claiming after this; the next tick carries on


def _processing_index() -> str:
    return f"{log_key()}:processing"


def drain_predictions(batch_size: int = 1000, stale_after_s: float = _STALE_CLAIM_SECONDS) -> int:
    """Move logged predictions from Redis into the `predictions` table; returns how many rows were added.

    Safe under any concurrency (two workers, RQ's at-least-once retries): each drain claims a batch by
    moving it atomically to its own processing list, inserts it (`ON CONFLICT DO NOTHING` on the request
    id, so a replay is a no-op), commits, and only then deletes its list. A drain that died between claim
    and commit leaves its list behind; any later drain takes it over once it is `stale_after_s` old.
    """
    from app.core.redis import get_redis

    redis = get_redis()
    added = _recover(redis, stale_after_s)
    claim = redis.register_script(_CLAIM)
    deadline = time.monotonic() + _DRAIN_SECONDS
    while time.monotonic() < deadline:
        mine = f"{log_key()}:processing:{uuid.uuid4().hex}"
        raw = claim(keys=[log_key(), mine, _processing_index()], args=[batch_size, time.time()])
        if not raw:
            break
        added += _store(raw)
        _release(redis, mine)
    return added


def _recover(redis: Any, stale_after_s: float) -> int:
    """Store and release the batches of drains that claimed them and died (idempotent, so racing is fine)."""
    added = 0
    for key in redis.zrangebyscore(_processing_index(), "-inf", time.time() - stale_after_s):
        raw = redis.lrange(key, 0, -1)
        if raw:
            log.warning("prediction_batch_recovered", entries=len(raw), claim=key.decode())
            added += _store(raw)
        _release(redis, key)
    return added


def _release(redis: Any, key: Any) -> None:
    pipe = redis.pipeline()
    pipe.delete(key)
    pipe.zrem(_processing_index(), key)
    pipe.execute()


def _store(raw: list[bytes]) -> int:
    """Insert a batch; rows whose request id is already stored are skipped. Returns the rows added."""
    from app.core.db import session_scope
    from app.tables.predictions import Prediction

    rows = {}
    for item in raw:
        entry = json.loads(item)
        rows.setdefault(entry["request_id"], entry)  # a request id twice in one batch: the first wins
    with session_scope(write=True) as session:
        dialect = session.get_bind().dialect.name
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        stmt = insert(Prediction).on_conflict_do_nothing(index_elements=["request_id"])
        result = session.execute(stmt.returning(Prediction.id), list(rows.values()))
        return len(result.all())


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
