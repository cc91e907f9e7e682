"""Ensemble use cases: create (HTTP or a dropped config file), predict, backtest against the members.

Configs live in `<store>/ensembles/ensemble_NNN.json` and backtest results beside them in
`ensemble_NNN_results.json` (the store is `MODEL_STORE_DIR`, or the S3 prefix of `MODEL_STORE_URL`; each
file is one atomic put); the `ensembles` table mirrors both so they can be listed and queried.
"""

from __future__ import annotations

import json
import re
import time
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from sqlmodel import select

from app.core.config import get_settings
from app.core.db import session_scope
from app.core.errors import BadInput, Conflict, NotFound, Unavailable
from app.core.logging import get_logger
from app.ml.ensembles import EnsemblePredictor, beats_members
from app.services.feature_rows import FeatureRowCache
from app.store.cache import ModelCache
from app.store.objects import object_store
from app.tables.ensembles import ENSEMBLE_STATUSES, EnsembleRecord

if TYPE_CHECKING:
    from app.services.predictions import PredictInput

log = get_logger(__name__)
FILE_PATTERN = re.compile(r"^ensemble_(\d{3,})\.json$")
_MIN_ROWS = 40


PREFIX = "ensembles"


def _config_names() -> list[str]:
    """Names of the `ensemble_NNN.json` config files in the store (results files are not configs)."""
    found = [info.key.split("/", 1)[1] for info in object_store().list(PREFIX)]
    return [f[:-5] for f in found if FILE_PATTERN.match(f)]


def _put_json(filename: str, content: dict[str, Any]) -> None:
    object_store().put(f"{PREFIX}/{filename}", json.dumps(content, indent=2).encode())


def _next_name() -> str:
    with session_scope() as session:
        names = session.exec(select(EnsembleRecord.name)).all()
    numbers = [
        int(m.group(1))
        for n in [*names, *_config_names()]
        if (m := re.match(r"^ensemble_(\d{3,})$", n))
    ]
    return f"ensemble_{max(numbers, default=0) + 1:03d}"


def _members(cache: ModelCache, names: list[str]) -> list[Any]:
    entries = [cache.resolve(name) for name in names]
    kinds = {e.kind for e in entries}
    if len(kinds) != 1:
        raise BadInput(f"members: models must all be of one kind, got {sorted(kinds)}")
    shapes = {(e.timeframe, e.horizon) for e in entries}
    if len(shapes) != 1:
        raise BadInput(
            f"members: models must share timeframe and horizon (same target), got {sorted(shapes)}"
        )
    return entries


def _predictor(record: EnsembleRecord, entries: list[Any]) -> EnsemblePredictor:
    return EnsemblePredictor(
        [e.model for e in entries], record.weights, record.method, names=record.models, meta=record.meta
    )


def create(body: Any, cache: ModelCache | None = None, *, replace: bool = False) -> EnsembleRecord:
    """Check the members, write the config file atomically, then the row.

    `body` has `models` (or `members`), `weights`, `method`, `name`, `description`. With `replace` (the
    seed's `save_config`), an ensemble of that name gets the new members, weights and method, and is a
    candidate again until its next backtest.
    """
    from app.store.cache import get_cache

    cache = cache or get_cache()
    names = list(getattr(body, "models", None) or body.members)
    entries = _members(cache, names)
    predictor = EnsemblePredictor([e.model for e in entries], body.weights, body.method, names=names)
    name = body.name or _next_name()
    with session_scope() as session:
        existing = session.exec(select(EnsembleRecord).where(EnsembleRecord.name == name)).first()
        if existing is not None and not replace:
            raise Conflict(f"an ensemble named {name} exists; leave `name` out to get the next number")
    _put_json(f"{name}.json", predictor.to_config(name))
    if existing is not None:
        with session_scope() as session:
            row = session.get(EnsembleRecord, existing.id)
            assert row is not None
            row.kind, row.method, row.models = predictor.kind, predictor.method, predictor.names
            row.weights, row.meta, row.results = predictor.weights.tolist(), None, None
            row.status, row.backtested_ts = "candidate", None
            session.add(row)
        return get_ensemble(name)
    record = EnsembleRecord(
        name=name,
        kind=predictor.kind,
        method=predictor.method,
        models=predictor.names,
        weights=predictor.weights.tolist(),
        description=body.description,
    )
    with session_scope() as session:
        session.add(record)
    return record


def _from_file(name: str) -> EnsembleRecord | None:
    """An ensemble config file as an (unsaved) record; None, logged, when it is missing or not valid."""
    try:
        raw = object_store().get(f"{PREFIX}/{name}.json")
        if raw is None:
            return None
        config = json.loads(raw)
        return EnsembleRecord(
            name=name,
            kind=config["kind"],
            method=config["method"],
            models=list(config["models"]),
            weights=[
                float(w)
                for w in config.get("weights") or [1.0 / len(config["models"])] * len(config["models"])
            ],
            meta=config.get("meta"),
            description=config.get("description", ""),
        )
    except (OSError, ValueError, KeyError, TypeError) as exc:
        log.warning("ensemble_file_skipped", file=f"{PREFIX}/{name}.json", error=str(exc))
        return None


def _unregistered(known: set[str]) -> list[EnsembleRecord]:
    """Config files dropped in the ensembles folder that have no row yet (read only; nothing is saved)."""
    found = []
    for name in sorted(_config_names(), reverse=True):
        if name not in known:
            record = _from_file(name)
            if record is not None:
                found.append(record)
    return found


def sync_files() -> int:
    """Register `ensemble_NNN.json` files written by hand or by `EnsemblePredictor.save_config`."""
    added = 0
    with session_scope() as session:
        known = set(session.exec(select(EnsembleRecord.name)).all())
        for record in _unregistered(known):
            session.add(record)
            added += 1
    return added


def list_ensembles() -> list[EnsembleRecord]:
    """Registered ensembles newest first, then config files not registered yet (`id` null). Reads only."""
    with session_scope() as session:
        stmt = select(EnsembleRecord).order_by(EnsembleRecord.id.desc())  # type: ignore[union-attr]
        rows = list(session.exec(stmt).all())
    return rows + _unregistered({r.name for r in rows})


def get_ensemble(id_or_name: str | int, *, register: bool = False) -> EnsembleRecord:
    """One ensemble by id or name. A config file without a row is read as it is (`id` null), or
    registered first when `register` (the POST routes, which may write)."""
    key = str(id_or_name)
    with session_scope() as session:
        stmt = select(EnsembleRecord)
        stmt = (
            stmt.where(EnsembleRecord.id == int(key))
            if key.isdigit()
            else stmt.where(EnsembleRecord.name == key)
        )
        record = session.exec(stmt).first()
    if record is None and FILE_PATTERN.match(f"{key}.json"):
        record = _from_file(key)
        if record is not None and register and sync_files():
            return get_ensemble(key)
    if record is None:
        raise NotFound(f"no ensemble {key!r}; GET /ensembles lists them")
    return record


def predict(
    cache: ModelCache, rows: FeatureRowCache, id_or_name: str, request: PredictInput
) -> dict[str, Any]:
    """Each member answers on its own features, through the single predict path; the blend follows the
    ensemble's method."""
    from app.core.metrics import observe_prediction
    from app.services import predictions

    start = time.perf_counter()
    record = get_ensemble(id_or_name, register=True)
    entries = _members(cache, record.models)
    members = []
    for entry in entries:
        member = predictions.answer_for(entry, request, rows, ensemble_id=record.id)
        assert member is not None
        members.append(member)
    predictor = _predictor(record, entries)
    raw = [predictions.answer_fields(record.kind, _answer_of(record.kind, m)) for m in members]
    blended = predictions.answer_fields(
        record.kind, predictor.answer([r["risk"] if record.kind == "risk" else r for r in raw])
    )
    observe_prediction(record.name, record.kind, time.perf_counter() - start)
    return {
        **blended,
        "ensemble": record.name,
        "ensemble_id": record.id,
        "kind": record.kind,
        "method": record.method,
        "symbol": request.symbol,
        "as_of": max(m["as_of"] for m in members),
        "members": members,
    }


def _answer_of(kind: str, member: dict[str, Any]) -> Any:
    if kind == "risk":
        return member["risk"]
    keys = ("direction", "state", "predicted_price", "predicted_volatility", "confidence")
    return {k: member[k] for k in keys if k in member}


def _holdout(
    models: list[Any], symbols: list[str], days_back: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Members' signals, labels and row times on the rows after every member's training (and embargo)."""
    from app.data.frames import bars_per_day
    from app.features import required_warmup
    from app.ml.dataset import build_dataset
    from app.services.market_data import load_window

    first = models[0]
    bars = int(days_back * bars_per_day(first.timeframe))
    warm = max(required_warmup(m.feature_names_, m.timeframe) for m in models)
    candles = load_window(symbols, first.timeframe, bars + warm)
    frames = []
    for model in models:
        ds = build_dataset(model, candles)
        end = (getattr(model, "training_", None) or {}).get("train_end_ms")
        keep = ds.ts_ms > (int(end) + model.horizon * model.bar_ms if end is not None else -1)
        ds = ds.subset(keep)
        frames.append((ds, model))
    keys = None
    for ds, _ in frames:
        k = pd.MultiIndex.from_arrays([ds.meta["symbol"].to_numpy(), ds.ts_ms])
        keys = k if keys is None else keys.intersection(k)
    keys = keys.sort_values() if keys is not None else keys
    if keys is None or len(keys) < _MIN_ROWS:
        raise Unavailable(
            f"only {0 if keys is None else len(keys)} rows after every member's training data in "
            f"the last {days_back:g} days of {symbols}; need {_MIN_ROWS}: ingest newer candles"
        )
    order = np.argsort(keys.get_level_values(1).to_numpy(), kind="stable")
    keys = keys[order]
    signals, y = [], None
    for ds, model in frames:
        index = pd.MultiIndex.from_arrays([ds.meta["symbol"].to_numpy(), ds.ts_ms])
        pos = index.get_indexer(keys)
        X = ds.X.iloc[pos]
        if model.is_classifier:
            signals.append(np.asarray(model.predict_proba(X))[:, 1])
        else:
            signals.append(np.asarray(model.predict(X), dtype="float64").reshape(-1))
        if y is None:
            y = ds.y[pos]
    return np.column_stack(signals), np.asarray(y), keys.get_level_values(1).to_numpy()


def backtest(id_or_name: str, symbols: list[str] | None = None, days_back: float = 7.0) -> EnsembleRecord:
    """Score the ensemble beside each member and a naive baseline on the same later half of the holdout.

    The earlier half fits the stacking meta-model (and is left out of every score, for all methods), and
    the scored rows start h bars after it (an embargo), so no method is scored on rows whose labels it
    learned from; members never trained on any of these rows.
    """
    from app.services.models import load_model

    record = get_ensemble(id_or_name, register=True)
    models = [load_model(name) for name in record.models]
    symbols = (
        symbols
        or sorted({s for m in models for s in (m.training_ or {}).get("symbols", [])})
        or get_settings().symbols
    )
    signals, y, times = _holdout(models, symbols, days_back)
    half = len(y) // 2
    # Embargo: scored rows start h bars after the last fitted row, so no fitted label overlaps them.
    gap_ms = max(m.horizon * m.bar_ms for m in models)
    scored = times > times[half - 1] + gap_ms
    if int(scored.sum()) < _MIN_ROWS // 2:
        raise Unavailable(f"too few rows left to score after the embargo ({int(scored.sum())}); ingest newer "
                          "candles or backtest over more days")
    predictor = EnsemblePredictor(
        models, record.weights, record.method, names=record.models, meta=record.meta
    )
    if record.method == "stacking":
        predictor.fit_stacking(signals[:half], y[:half], row_times_ms=times[:half])
    scores = predictor.score(signals[scored], y[scored], earlier_y=y[:half])
    beats = beats_members(predictor.kind, scores)
    results = {
        **scores,
        "beats_every_member": beats,
        "symbols": symbols,
        "days_back": days_back,
        "fit_rows": int(half) if record.method == "stacking" else 0,
        "fit_start": _iso(int(times[0])),
        "fit_end": _iso(int(times[half - 1])),
        "members_train_end": {
            n: (m.training_ or {}).get("train_end") for n, m in zip(record.models, models, strict=True)
        },
        "eval_rows": int(scored.sum()),
        "eval_start": _iso(int(times[scored][0])),
        "embargo_bars_between_fit_and_eval": max(m.horizon for m in models),
        "eval_end": _iso(int(times[-1])),
        "metric": "f1" if predictor.is_classifier else "rmse",
    }
    _put_json(f"{record.name}_results.json", results)
    _put_json(f"{record.name}.json", predictor.to_config(record.name))
    with session_scope() as session:
        row = session.get(EnsembleRecord, record.id)
        assert row is not None
        row.results, row.meta = results, predictor.meta
        row.status = "active" if beats else "rejected"
        row.backtested_ts = datetime.now(UTC)
        session.add(row)
    return get_ensemble(record.id)


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat()


def save_config(name: str, config: dict[str, Any]) -> EnsembleRecord:
    """The seed's `EnsemblePredictor(...).save_config(name)`: create or replace the named ensemble."""
    if not FILE_PATTERN.match(f"{name}.json"):
        raise BadInput(f"invalid ensemble name {name!r}: use ensemble_NNN (e.g. ensemble_001)")
    body = SimpleNamespace(models=list(config["models"]), weights=list(config["weights"]),
                           method=config["method"], name=name, description=config.get("description", ""))
    return create(body, replace=True)


def set_status(id_or_name: str, status: str) -> EnsembleRecord:
    """Mark an ensemble active (the seed's `db.set_ensemble_active`) or rejected by hand."""
    if status not in ENSEMBLE_STATUSES:
        raise BadInput(f"unknown ensemble status {status!r}; one of {', '.join(ENSEMBLE_STATUSES)}")
    record = get_ensemble(id_or_name, register=True)
    with session_scope() as session:
        row = session.get(EnsembleRecord, record.id)
        assert row is not None
        row.status = status
        session.add(row)
    log.info("ensemble status changed", ensemble=record.name, status=status)
    return get_ensemble(record.id)


def backtest_results(
    id_or_name: str, symbols: list[str] | None = None, days_back: float = 7.0
) -> dict[str, Any]:
    """`backtest`, as the seed reads it: the ensemble's own scores on top (accuracy and f1, or rmse and
    mae), each member's under `members`, and the rest of the results beside them."""
    record = backtest(id_or_name, symbols=symbols, days_back=days_back)
    results = dict(record.results or {})
    return {**results["ensemble"], **results, "ensemble_name": record.name, "status": record.status}
