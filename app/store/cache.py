"""The API process's in-memory models: each kind's champion, the other active models, and any model asked
for by name, with hot reload.

Readers take one immutable snapshot (a plain attribute read) and keep using it for their whole request, so
a reload that swaps in a new snapshot never disturbs a request in flight. Reloads are built off the request
path by a background thread that wakes on (a) a message on the Redis channel `<prefix>:models:events`,
(b) a change of the Redis counter `<prefix>:models:version`, or (c) a change of the active set in the
database (polled every few seconds, so a status change made by a process that forgot to publish is still
picked up). `app.services.models.set_status` calls `notify_models_changed` after every status change.
"""

from __future__ import annotations

import json
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from redis.exceptions import RedisError
from sqlalchemy import select

from app.core.background import BackgroundLoop
from app.core.config import get_settings
from app.core.errors import MLPipeError, NotFound, Unavailable
from app.core.logging import get_logger
from app.ml.dissimilarity import DissimilarityIndex, reference_of

log = get_logger(__name__)

KINDS = ("direction", "risk", "price", "momentum", "volatility")
_EXTRA_CAPACITY = 16
_LOAD_SLOTS = 2


def _channel() -> str:
    return f"{get_settings().queue_prefix}:models:events"


def _version_key() -> str:
    return f"{get_settings().queue_prefix}:models:version"


def notify_models_changed(name: str, status: str, reason: str = "status_change") -> None:
    """Tell every API process that model statuses changed: bump the version key and publish an event.

    Never raises: the database is the truth, and caches also poll it.
    """
    from app.core.redis import get_redis

    try:
        redis = get_redis()
        version = redis.incr(_version_key())
        redis.publish(
            _channel(),
            json.dumps({"model": name, "status": status, "reason": reason, "version": int(version)}),
        )
    except RedisError as exc:
        log.warning("model_change_not_published", model=name, error=str(exc))


EVIDENCE = ("skill", "skill_interval", "beats_baseline")  # DESIGN 8: in every predict answer


@dataclass(frozen=True)
class CachedModel:
    """A loaded model plus what answers need, read once at load time."""

    name: str
    kind: str
    version: int
    status: str
    score: float | None
    data_source: str
    created_ts: datetime
    timeframe: str
    horizon: int
    features: tuple[str, ...]
    fingerprint: str
    model: Any = field(repr=False)
    dissimilarity: DissimilarityIndex | None = field(default=None, repr=False)
    evidence: dict[str, Any] = field(default_factory=dict)  # skill, skill_interval, beats_baseline


@dataclass(frozen=True)
class Snapshot:
    models: dict[str, CachedModel]
    champions: dict[str, str]
    fingerprint: tuple = ()
    loaded_ts: float = 0.0


def _fingerprint(record: Any) -> str:
    return json.dumps(record.artifact_sha256, sort_keys=True)


def _active_state() -> tuple:
    """The facts a reload depends on: active models, their scores and their artifacts."""
    from app.core.db import get_engine
    from app.tables.models import ModelRecord

    stmt = select(ModelRecord.name, ModelRecord.score, ModelRecord.artifact_sha256).where(
        ModelRecord.status == "active"
    )
    with get_engine().connect() as conn:
        rows = conn.execute(stmt).all()
    return tuple(sorted((n, s, json.dumps(h, sort_keys=True)) for n, s, h in rows))


class ModelCache:
    """Models in memory for one API process; `start()` runs the hot-reload watcher."""

    def __init__(self, poll_seconds: float = 1.0, db_poll_seconds: float = 3.0) -> None:
        self.poll_seconds = poll_seconds
        self.db_poll_seconds = db_poll_seconds
        self._snapshot = Snapshot({}, {})
        self._extras: OrderedDict[str, CachedModel] = OrderedDict()
        self._lock = threading.Lock()  # serialises reloads and snapshot changes, never reads
        self._loading: dict[str, threading.Lock] = {}  # one gate per model name loaded on demand
        self._load_slots = threading.BoundedSemaphore(_LOAD_SLOTS)
        self._watcher = BackgroundLoop("model-cache-watch", self._watch)
        self._seen_version: bytes | None = None
        self.reloads = 0

    # ---- reading (request path: no locks, no I/O on a hit) -----------------------------------------
    @property
    def snapshot(self) -> Snapshot:
        return self._snapshot

    def resolve(self, name_or_kind: str) -> CachedModel:
        """A kind's champion, or a model by name (loaded on first use if it is not active)."""
        snap = self._snapshot
        if name_or_kind in KINDS:
            name = snap.champions.get(name_or_kind)
            if name is None:
                raise Unavailable(
                    f"no active {name_or_kind} model yet: train one (`mlpipe cycle` or POST /cycles) "
                    f"or activate one with PATCH /models/{{name}}"
                )
            return snap.models[name]
        entry = snap.models.get(name_or_kind) or self._extras.get(name_or_kind)
        if entry is not None:
            return entry
        return self._load_extra(name_or_kind)

    def peek(self, name_or_kind: str) -> CachedModel | None:
        """Like `resolve`, but None instead of any I/O (a model by name not in memory yet)."""
        if name_or_kind in KINDS:
            return self.resolve(name_or_kind)
        entry = self._snapshot.models.get(name_or_kind) or self._extras.get(name_or_kind)
        if entry is None:
            from app.services.models import surely_absent

            if surely_absent(name_or_kind):  # an invented name, refused without leaving the event loop
                raise NotFound(
                    f"no model named {name_or_kind!r}. `mlpipe models` (or GET /models) lists them"
                )
        return entry

    def _load_extra(self, name: str) -> CachedModel:
        from app.services.models import get_model, may_exist

        if not may_exist(name):  # an invented name costs no query (a flood of them, one a second)
            raise NotFound(f"no model named {name!r}. `mlpipe models` (or GET /models) lists them")
        record = get_model(name)  # NotFound (404) with a hint when unknown
        if record.status == "failed":
            raise NotFound(f"model {name!r} failed during training or validation and cannot answer")
        with self._lock:
            gate = self._loading.setdefault(name, threading.Lock())
        # Loaded outside the reload lock (a hot reload never waits for a by-name load), once per name at a
        # time, and at most _LOAD_SLOTS at once, so many names asked for cannot take every core.
        with gate, self._load_slots:
            entry = self._extras.get(name)
            if entry is None:
                entry = self._load(record)
            with self._lock:
                self._extras[name] = entry
                self._extras.move_to_end(name)
                while len(self._extras) > _EXTRA_CAPACITY:
                    self._extras.popitem(last=False)
                self._pin()
        return entry

    def _pin(self) -> None:
        """The local copies of the models held here are never pruned from the blob cache (S3 store)."""
        from app.store.blob_cache import blob_cache

        held = [*self._snapshot.models.values(), *self._extras.values()]
        blob_cache().pin("model-cache", {sha for e in held for sha in json.loads(e.fingerprint).values()})

    # ---- loading ---------------------------------------------------------------------------------------
    def _load(self, record: Any) -> CachedModel:
        from app.core.metrics import record_model_load
        from app.services.models import load_model

        model = load_model(record.name)
        record_model_load(record.name)
        return CachedModel(
            name=record.name,
            kind=record.kind,
            version=int(record.version),
            status=record.status,
            score=record.score,
            data_source=record.data_source,
            created_ts=record.created_ts,
            timeframe=str(getattr(model, "timeframe", "1m")),
            horizon=int(getattr(model, "horizon", 1)),
            features=tuple(getattr(model, "feature_names_", None) or record.features),
            fingerprint=_fingerprint(record),
            model=model,
            dissimilarity=reference_of(model),
            evidence={k: (record.performance or {}).get(k) for k in EVIDENCE},
        )

    def reload(self, reason: str = "manual") -> Snapshot:
        """Load the active models (reusing ones already in memory) and swap the snapshot in one step.

        A model that fails to load (tampered files, missing class) is logged and left out; the others serve.
        """
        from app.core.metrics import record_reload, set_models_loaded
        from app.services.models import list_models

        with self._lock:
            state = _active_state()
            old = self._snapshot
            models: dict[str, CachedModel] = {}
            for record in list_models(status="active"):
                current = old.models.get(record.name) or self._extras.get(record.name)
                try:
                    if current is not None and current.fingerprint == _fingerprint(record):
                        current = replace(current, status=record.status, score=record.score)
                    else:
                        current = self._load(record)
                except MLPipeError as exc:
                    log.error("model_not_loaded", model=record.name, error=exc.message)
                    continue
                models[record.name] = current
            champions: dict[str, str] = {}
            for entry in sorted(models.values(), key=_rank_key):
                champions.setdefault(entry.kind, entry.name)
            self._snapshot = Snapshot(models, champions, state, time.time())
            self._extras.clear()
            self._pin()
            self.reloads += 1
        record_reload(reason)
        set_models_loaded(len(models))
        if old.champions != champions:
            log.info("champions_changed", reason=reason, champions=champions, previous=old.champions)
        return self._snapshot

    # ---- hot reload ------------------------------------------------------------------------------------
    def start(self) -> None:
        self._watcher.start()

    def stop(self) -> None:
        self._watcher.stop(timeout=1.0)  # a daemon thread: a watcher stuck on a hung dependency dies with us

    def _watch(self, stopping: threading.Event) -> None:
        from app.core.redis import get_redis

        pubsub = None
        last_db_check = time.monotonic()
        while not stopping.is_set():
            reason = None
            try:
                if pubsub is None:
                    pubsub = get_redis().pubsub(ignore_subscribe_messages=True)
                    pubsub.subscribe(_channel())
                message = pubsub.get_message(timeout=self.poll_seconds)
                if message is not None:
                    reason = "status_change"
                version = get_redis().get(_version_key())
                if version != self._seen_version:
                    if self._seen_version is not None or version is not None:
                        reason = reason or "status_change"
                    self._seen_version = version
            except RedisError as exc:
                log.warning("model_watch_redis_error", error=str(exc))
                pubsub = None
                stopping.wait(self.poll_seconds)
            try:
                if reason is None and time.monotonic() - last_db_check >= self.db_poll_seconds:
                    last_db_check = time.monotonic()
                    if _active_state() != self._snapshot.fingerprint:
                        reason = "db_change"
                if reason is not None:
                    self.reload(reason)
            except Exception as exc:  # the watcher must outlive a failed reload
                log.error("model_reload_failed", error=str(exc))
                stopping.wait(self.poll_seconds)
        if pubsub is not None:
            try:
                pubsub.close()
            except RedisError:
                pass


def _rank_key(entry: CachedModel) -> tuple[float, float, str]:
    """Best first, as the ranking orders them: higher score, then newer, then name."""
    score = entry.score if entry.score is not None else float("-inf")
    return (-score, -entry.created_ts.timestamp(), entry.name)


_cache: ModelCache | None = None


def get_cache() -> ModelCache:
    """The process's cache (the lifespan loads and starts it; scripts and tests may use it directly)."""
    global _cache
    if _cache is None:
        _cache = ModelCache()
    return _cache


def reset_cache() -> None:
    global _cache
    if _cache is not None:
        _cache.stop()
    _cache = None
