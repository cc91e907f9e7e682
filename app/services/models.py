"""Model use cases: save a fitted model (files + row), load it back verified, list it, change its status.

Files and rows move together. `save_model` builds the whole directory in a private temp dir, publishes it
with one rename, then inserts the row; if the insert fails the directory is removed again. A hard crash
between the rename and the commit can leave a `model_NNN/` without a row, but nothing reaches files except
through a row, so such a directory is invisible, and `sweep_store` (an hourly cron job) deletes it later.
The reverse (a row without files) cannot happen: the row is written only after its files are published
and hashed.

After that the artifacts never change. Status and live performance change only the row (the truth);
metadata.json, a readable copy of it that is not among the verified files, is rewritten after each commit,
so no failure of that rewrite, at any step, can make a model unloadable (docs/DECISIONS.md, "Store").
"""

from __future__ import annotations

import importlib
import json
import re
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, or_
from sqlalchemy.exc import IntegrityError as DBIntegrityError
from sqlmodel import Session, select

from app.core.config import get_settings
from app.core.db import after_commit, session_scope
from app.core.errors import BadInput, Conflict, MLPipeError, NotFound
from app.core.logging import get_logger
from app.services.model_docs import jsonable, metadata_for, readme_for
from app.store.artifacts import ModelStore
from app.store.blob_cache import Pruned, blob_cache
from app.store.object_models import ObjectModelStore
from app.store.objects import object_store
from app.tables.models import MODEL_EVENTS, MODEL_STATUSES, ModelEvent, ModelRecord, utcnow

if TYPE_CHECKING:
    from app.ml.base import BaseModel

log = get_logger(__name__)

KINDS = ("direction", "risk", "price", "momentum", "volatility")
NAME_PATTERN = re.compile(r"^(?P<family>[a-z][a-z0-9_]*?)_(?P<version>\d{3,})$")
FAMILY_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,110}$")
# DESIGN 6; archived -> active lets an operator undo an archive by hand (PATCH /models/{name}).
TRANSITIONS: dict[str, frozenset[str]] = {
    "candidate": frozenset({"active", "archived", "failed"}),
    "active": frozenset({"superseded", "archived"}),
    "superseded": frozenset({"archived"}),
    "archived": frozenset({"active"}),
    "failed": frozenset(),
}
_STATUS_EVENT = {"active": "promoted", "archived": "archived", "superseded": "superseded", "failed": "failed"}
# artifact suffix -> (package, module) whose versions a model needs to load; versions are read from the
# modules, since a package may be installed under another distribution name (xgboost-cpu).
_DEPENDENCIES = {".json": (("xgboost", "xgboost"),), ".ubj": (("xgboost", "xgboost"),),
                 ".skops": (("scikit-learn", "sklearn"), ("skops", "skops")), ".pt": (("torch", "torch"),)}
_SAVE_ATTEMPTS = 5


def model_store() -> ModelStore | ObjectModelStore:
    """The local `model_NNN/` directories, or objects plus manifests in S3 when `MODEL_STORE_URL` is set."""
    settings = get_settings()
    if not settings.model_store_url:
        return ModelStore(settings.model_store_dir)
    return ObjectModelStore(object_store(), blob_cache())


def family_of(model: BaseModel) -> str:
    """Default family: the class name in snake case (DirectionPredictor -> direction_predictor)."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", type(model).__name__).lower()


def split_name(name: str) -> tuple[str, int | None]:
    """`direction_predictor_003` -> ("direction_predictor", 3); a bare family -> (family, None)."""
    match = NAME_PATTERN.match(name)
    if match:
        return match["family"], int(match["version"])
    if not FAMILY_PATTERN.match(name):
        raise BadInput(
            f"invalid model name {name!r}: use lowercase letters, digits and '_' "
            "(e.g. direction_predictor_001)"
        )
    return name, None


def next_version(family: str, session: Session | None = None) -> int:
    """One more than the highest version of the family ever saved (archived and failed ones included)."""
    stmt = select(func.max(ModelRecord.version)).where(ModelRecord.family == family)
    if session is not None:
        return (session.exec(stmt).one() or 0) + 1
    with session_scope() as own:
        return (own.exec(stmt).one() or 0) + 1


def _dependencies(model: BaseModel) -> list[str]:
    found = []
    for package, module in _DEPENDENCIES.get(Path(model.artifact_file).suffix, ()):
        found.append(f"{package}=={importlib.import_module(module).__version__}")
    return found


def _new_record(
    model: BaseModel, family: str, version_: int, status: str, description: str | None
) -> ModelRecord:
    training = dict(getattr(model, "training_", None) or {})
    training.setdefault("horizon", getattr(model, "horizon", None))
    training.setdefault("timeframe", getattr(model, "timeframe", None))
    training = jsonable(training)
    performance = jsonable(dict(getattr(model, "performance_", None) or {}))
    skill = performance.get("skill")
    hyperparams = getattr(model, "hyperparams", None) or model.get_params()
    return ModelRecord(
        name=f"{family}_{version_:03d}",
        family=family,
        kind=model.kind,
        model_type=model.model_type,
        version=version_,
        status=status,
        store_dir="",
        features=list(model.feature_names_),
        hyperparams=jsonable({k: v for k, v in hyperparams.items() if k != "features"}),
        training=training,
        performance=performance,
        live_performance={"accuracy": None, "last_updated": None, "trades_evaluated": 0},
        score=performance.get("score", None if skill is None else 100.0 * float(skill)),
        data_source=str(training.get("data_source") or "unknown"),
        description=description or "",
        created_ts=utcnow(),
    )


def save_model(
    model: BaseModel,
    name: str | None = None,
    status: str = "candidate",
    description: str | None = None,
    *,
    cycle_id: str | None = None,
    fence: Callable[[Session], None] | None = None,
) -> ModelRecord:
    """Store a fitted model's files (atomically, hashed) and then its row; return the row.

    `name` may be a full `<family>_<NNN>` (refused if taken) or a bare family (the next version is used);
    without it the family is the class name in snake case. Concurrent savers of one family each get their
    own version: a lost race on the unique name removes the published directory and tries the next one.
    `fence` runs first inside the row's transaction and may raise to refuse the write (a cycle job whose
    try was superseded); the files written are then removed.
    """
    if not getattr(model, "feature_names_", None):
        raise BadInput(f"{type(model).__name__} is not fitted; call fit/train before saving it")
    if status not in MODEL_STATUSES:
        raise BadInput(f"unknown status {status!r}; one of {', '.join(MODEL_STATUSES)}")
    family, fixed_version = split_name(name) if name else (family_of(model), None)
    if fixed_version is not None:
        with session_scope() as session:
            if _find(session, name) is not None:
                raise Conflict(f"a model named {name!r} already exists; pick another name")
    store = model_store()
    for _ in range(_SAVE_ATTEMPTS):
        record = _new_record(model, family, fixed_version or next_version(family), status, description)
        if not record.description:
            record.description = _default_description(model)
        dir_name, hashes = store.write(lambda directory, rec=record: _build(directory, model, rec))
        record.store_dir, record.artifact_sha256 = dir_name, hashes
        try:
            # a fenced write reads before it writes: on SQLite it must hold the write lock from its start,
            # else its upgrade from reader to writer fails at once ("database is locked") under a busy peer
            with session_scope(write=fence is not None) as session:
                if fence is not None:
                    fence(session)
                session.add(record)
                session.add(ModelEvent(model_name=record.name, event="trained", cycle_id=cycle_id,
                                       reason=f"saved to {dir_name}", numbers=_event_numbers(record)))
        except DBIntegrityError:
            store.remove(dir_name)
            if fixed_version is not None:
                raise Conflict(f"a model named {record.name!r} already exists; pick another name") from None
            continue  # another writer took this version a moment ago
        except BaseException:
            store.remove(dir_name)
            raise
        model.name_, model.version_ = record.name, record.version
        _forget_names()  # this process asks the database again for the next unknown name
        log.info("model saved", model=record.name, store_dir=dir_name, kind=record.kind)
        return record
    raise Conflict(f"could not claim a version of {family!r} after {_SAVE_ATTEMPTS} tries; retry")


def _build(directory: Path, model: BaseModel, record: ModelRecord) -> None:
    config = model.save_artifacts(directory)
    (directory / "config.json").write_text(json.dumps(jsonable(config), indent=2, sort_keys=True) + "\n")
    metadata = metadata_for(record, dependencies=_dependencies(model), is_classifier=model.is_classifier)
    (directory / "metadata.json").write_text(json.dumps(metadata, indent=2) + "\n")
    (directory / "README.md").write_text(readme_for(record, model))


def _default_description(model: BaseModel) -> str:
    h, tf = getattr(model, "horizon", None), getattr(model, "timeframe", "1m")
    return {
        "direction": f"Predicts UP/DOWN direction of the close {h} {tf} candles ahead",
        "risk": f"Scores 0-100 the largest price move either way over the next {h} {tf} candles",
        "price": f"Predicts the price {h} {tf} candles ahead (log return over the next hour)",
        "momentum": f"Says whether momentum accelerates or decelerates over the next {h} {tf} candles",
        "volatility": f"Predicts realized volatility of returns over the next {h} {tf} candles",
    }.get(model.kind, f"{model.kind} model")


def _event_numbers(record: ModelRecord) -> dict[str, Any]:
    keys = ("accuracy", "f1", "rmse", "skill", "baseline", "baseline_accuracy", "baseline_rmse")
    return {k: record.performance.get(k) for k in keys if k in record.performance} | {"score": record.score}


def _find(session: Session, name_or_dir: str) -> ModelRecord | None:
    stmt = select(ModelRecord).where(
        or_(ModelRecord.name == name_or_dir, ModelRecord.store_dir == name_or_dir)
    )
    return session.exec(stmt).first()


def _not_found(session: Session, name: str) -> NotFound:
    family = NAME_PATTERN.match(name)["family"] if NAME_PATTERN.match(name) else name
    stmt = select(ModelRecord.name).where(ModelRecord.family == family)
    similar = session.exec(stmt.order_by(ModelRecord.version.desc()).limit(5)).all()
    hint = f"; models of that family: {', '.join(similar)}" if similar else ""
    return NotFound(f"no model named {name!r}{hint}. `mlpipe models` (or GET /models) lists them")


_NAMES_SECONDS = 1.0
_names: tuple[float, frozenset[str]] = (float("-inf"), frozenset())
_names_lock = threading.Lock()


def may_exist(name_or_dir: str) -> bool:
    """False only when no model has that name or directory, per a list re-read at most once a second.

    Lets a request for a made-up name be refused without a query each (a flood of invented names costs
    one small query a second). A model saved by another process in the last second may read as unknown
    for that second; one saved by this process is found at once.
    """
    global _names
    read_at, names = _names
    if name_or_dir in names:
        return True
    with _names_lock:
        read_at, names = _names
        if time.monotonic() - read_at >= _NAMES_SECONDS:
            with session_scope() as session:
                rows = session.exec(select(ModelRecord.name, ModelRecord.store_dir)).all()
            names = frozenset(n for row in rows for n in row if n)
            _names = (time.monotonic(), names)
    return name_or_dir in names


def _forget_names() -> None:
    global _names
    _names = (float("-inf"), frozenset())


def surely_absent(name_or_dir: str) -> bool:
    """True when the list of names read less than a second ago lacks it (no I/O; False when unsure)."""
    read_at, names = _names
    return time.monotonic() - read_at < _NAMES_SECONDS and name_or_dir not in names


def get_model(name: str) -> ModelRecord:
    with session_scope() as session:
        record = _find(session, name)
        if record is None:
            raise _not_found(session, name)
        return record


def list_models(status: str | None = None, kind: str | None = None) -> list[ModelRecord]:
    """Newest first, optionally only one status and/or one kind."""
    if status is not None and status not in MODEL_STATUSES:
        raise BadInput(f"unknown status {status!r}; one of {', '.join(MODEL_STATUSES)}")
    if kind is not None and kind not in KINDS:
        raise BadInput(f"unknown kind {kind!r}; one of {', '.join(KINDS)}")
    stmt = select(ModelRecord).order_by(ModelRecord.created_ts.desc(), ModelRecord.id.desc())
    if status is not None:
        stmt = stmt.where(ModelRecord.status == status)
    if kind is not None:
        stmt = stmt.where(ModelRecord.kind == kind)
    with session_scope() as session:
        return list(session.exec(stmt).all())


def _model_class_for(kind: str) -> type[BaseModel]:
    from app.ml.registry import model_class_for

    return model_class_for(kind)


def load_model(name_or_dir: str) -> BaseModel:
    """Rebuild a stored model after proving its files are the ones saved (SHA-256 recorded in the row)."""
    record = get_model(name_or_dir)
    if not record.store_dir:
        raise Conflict(f"{record.name} has no stored files (status {record.status}: "
                       f"{record.error or 'training did not finish'}); train a new version")
    store = model_store()
    downloads = blob_cache().downloads
    directory = store.read_verified(record.store_dir, record.artifact_sha256)
    config = json.loads((directory / "config.json").read_text())
    model = _model_class_for(record.kind).load_artifacts(directory, config)
    model.name_, model.version_ = record.name, record.version
    if isinstance(store, ObjectModelStore) and blob_cache().downloads > downloads:
        maybe_prune_blob_cache()  # the cache grew
    return model


BLOB_PRUNE_EVERY_S = 60.0
_last_prune = float("-inf")
_prune_lock = threading.Lock()


def maybe_prune_blob_cache(in_use: Iterable[str] = ()) -> Pruned | None:
    """`prune_blob_cache` at most once a minute per process (called after a load that downloaded)."""
    global _last_prune
    with _prune_lock:
        if time.monotonic() - _last_prune < BLOB_PRUNE_EVERY_S:
            return None
        _last_prune = time.monotonic()
    return prune_blob_cache(in_use)


def prune_blob_cache(in_use: Iterable[str] = ()) -> Pruned | None:
    """Bound the local copies of S3 artifacts to BLOB_CACHE_MAX_MB and BLOB_CACHE_MAX_AGE_HOURS, never
    removing the files of an active model (any API process may serve it, and a restart during an S3 outage
    loads it from there), of a model this process holds (pinned by the model cache), nor `in_use`.

    None without MODEL_STORE_URL (no cache), or when the database cannot say which models are active (then
    nothing is removed: a needed file is never guessed away).
    """
    settings = get_settings()
    if not settings.model_store_url:
        return None
    try:
        active = list_models(status="active")
    except Exception as exc:  # noqa: BLE001 - the database is down: prune another time
        log.warning("blob_cache_prune_skipped", error=str(exc))
        return None
    keep = set(in_use) | {sha for record in active for sha in (record.artifact_sha256 or {}).values()}
    pruned = blob_cache().prune(keep, max_bytes=settings.blob_cache_max_mb * 2**20,
                                max_age_s=settings.blob_cache_max_age_hours * 3600)
    if pruned.removed:
        log.info("blob_cache_pruned", blobs=len(pruned.removed), freed_bytes=pruned.freed_bytes,
                 bytes_after=pruned.bytes_after)
    return pruned


def record_event(
    model_name: str,
    event: str,
    reason: str = "",
    numbers: dict[str, Any] | None = None,
    cycle_id: str | None = None,
    session: Session | None = None,
    fence: Callable[[Session], None] | None = None,
) -> ModelEvent:
    """Append one decision to the audit trail (in the caller's transaction when a session is given).

    `fence` (a cycle job's `write_fence`) runs first in the event's own transaction and may raise to refuse
    it: a try declared lost records nothing."""
    if event not in MODEL_EVENTS:
        raise BadInput(f"unknown model event {event!r}; one of {', '.join(MODEL_EVENTS)}")
    row = ModelEvent(model_name=model_name, event=event, reason=reason, numbers=jsonable(numbers or {}),
                     cycle_id=cycle_id)
    if session is not None:
        if fence is not None:
            fence(session)
        session.add(row)
        return row
    with session_scope(write=fence is not None) as own:
        if fence is not None:
            fence(own)
        own.add(row)
    return row


def model_events(model_name: str) -> list[ModelEvent]:
    with session_scope() as session:
        stmt = select(ModelEvent).where(ModelEvent.model_name == model_name).order_by(ModelEvent.id)
        return list(session.exec(stmt).all())


def _locked(session: Session, name: str) -> ModelRecord:
    """The row of `name`, locked until the caller's transaction ends (FOR UPDATE; on SQLite the
    write session's BEGIN IMMEDIATE)."""
    record = session.exec(select(ModelRecord).where(ModelRecord.name == name).with_for_update()).first()
    if record is None:
        raise _not_found(session, name)
    return record


def change_status(
    session: Session,
    name: str,
    status: str,
    reason: str,
    *,
    numbers: dict[str, Any] | None = None,
    cycle_id: str | None = None,
) -> ModelRecord | None:
    """Move a model along the lifecycle of DESIGN 6 inside the caller's transaction, and record why.

    Returns the changed row, or None when it already has that status (nothing changes, nothing is
    recorded). Never commits: several changes (a ranking plan) are one transaction when the caller makes
    them in one session. Once that commits, the model's metadata.json is rewritten and every API process
    is told to reload (never before, and never if it rolls back).
    """
    if status not in MODEL_STATUSES:
        raise BadInput(f"unknown status {status!r}; one of {', '.join(MODEL_STATUSES)}")
    record = _locked(session, name)
    previous = record.status
    if previous == status:
        return None
    allowed = TRANSITIONS[previous]
    if status not in allowed:
        raise Conflict(
            f"{name} is {previous}; it can become {', '.join(sorted(allowed)) or 'nothing else'}, "
            f"not {status}"
        )
    numbers = {"from": previous, "to": status, **(numbers or {})}
    record_event(name, _STATUS_EVENT.get(status, "status_changed"), reason, numbers=numbers,
                 cycle_id=cycle_id, session=session)
    record.status = status
    session.add(record)
    after_commit(session, lambda: _metadata_after_commit(name))
    _notify_after_commit(session, name, status)
    log.info("model status changed", model=name, status=status, previous=previous, reason=reason)
    return record


def _notify_after_commit(session: Session, name: str, status: str) -> None:
    """One message per transaction, however many models it changed (a ranking changes several)."""
    changed = session.info.setdefault("models_changed", [])
    changed.append((name, status))
    if len(changed) == 1:
        def notify() -> None:
            from app.store.cache import notify_models_changed

            names = ",".join(n for n, _ in changed)
            notify_models_changed(names, changed[-1][1] if len(changed) == 1 else "several")

        after_commit(session, notify)


def set_status(
    name: str,
    status: str,
    reason: str,
    *,
    numbers: dict[str, Any] | None = None,
    cycle_id: str | None = None,
) -> ModelRecord:
    """One status change in its own transaction (PATCH /models/{name}, the seed's `db` calls)."""
    with session_scope(write=True) as session:
        record = change_status(session, name, status, reason, numbers=numbers, cycle_id=cycle_id)
        if record is None:
            record = _locked(session, name)
    return record


def update_live_performance(name: str, accuracy: float | None, trades_evaluated: int) -> ModelRecord:
    """Record how a served model scored on outcomes that have since happened (DESIGN 8)."""
    with session_scope(write=True) as session:
        record = _locked(session, name)
        record.live_performance = jsonable({"accuracy": accuracy, "trades_evaluated": int(trades_evaluated),
                                            "last_updated": utcnow().isoformat()})
        session.add(record)
        after_commit(session, lambda: _metadata_after_commit(name))
    return record


def _metadata_after_commit(name: str) -> None:
    try:
        refresh_metadata(name)
    except MLPipeError as exc:  # the row is the truth; the next update or `sweep_store` rewrites the copy
        log.warning("metadata_not_rewritten", model=name, error=exc.message)


def _metadata_of(record: ModelRecord, current: Any) -> dict[str, Any]:
    if isinstance(current, dict):
        return {**current, "status": record.status, "live_performance": dict(record.live_performance)}
    return metadata_for(record, dependencies=[], is_classifier=record.kind in ("direction", "momentum"))


def refresh_metadata(name: str) -> bool:
    """Make a model's metadata.json say what its row says; True when the file had to be rewritten.

    metadata.json is a readable copy of the row (DESIGN 7), never verified and never loaded. It is rendered
    from the row read under the directory's lock, so the last writer writes the newest committed state
    whatever order concurrent commits came in; a write that failed or died is mended by the next one.
    """
    store = model_store()
    record = get_model(name)
    if not record.store_dir:
        return False
    try:
        with store.document_lock(record.store_dir):
            record = get_model(name)
            raw = store.read_document(record.store_dir, "metadata.json")
            try:
                current = json.loads(raw) if raw is not None else None
            except ValueError:
                current = None
            wanted = _metadata_of(record, current)
            if wanted == current:
                return False
            content = (json.dumps(wanted, indent=2) + "\n").encode()
            store.write_document(record.store_dir, "metadata.json", content)
    except FileNotFoundError:
        raise NotFound(f"model directory {record.store_dir} of {name} does not exist") from None
    return True


def sweep_store(older_than_s: float = 3600.0) -> dict[str, list[str]]:
    """Mend what crashed or failed writers left: temp files and dirs, model dirs that never got their row,
    and metadata.json files that lag their row (a rewrite that failed after its commit)."""
    store = model_store()
    with session_scope() as session:
        rows = session.exec(select(ModelRecord.name, ModelRecord.store_dir)).all()
    known = {store_dir for _, store_dir in rows}
    cutoff = time.time() - older_than_s
    orphans = [d for d in store.list_dirs() if d not in known and store.modified(d) < cutoff]
    for dir_name in orphans:
        store.remove(dir_name)
    stale_tmp = store.cleanup_stale_tmp(older_than_s)  # after the orphans, so their objects go too
    present = set(store.list_dirs())
    rewritten = []
    for name, store_dir in rows:
        if store_dir in present:
            try:
                if refresh_metadata(name):
                    rewritten.append(name)
            except MLPipeError as exc:
                log.warning("metadata_not_rewritten", model=name, error=exc.message)
    return {"tmp": stale_tmp, "orphans": orphans, "metadata": sorted(rewritten)}
