"""The Models pages: the leaderboard, and one model's page (metadata, holdout metrics with intervals,
reliability diagram or band coverage, the trading backtest's equity curve beside buy and hold, walk-forward
fold scores, feature drift against its thresholds, and the events that made and changed it)."""

from __future__ import annotations

from typing import Any

from sqlmodel import select

from app.core.db import session_scope
from app.services.dashboard import common
from app.services.models import get_model, model_events
from app.store.cache import get_cache
from app.tables.models import ModelRecord

LEADERBOARD = 100
_CLASSIFIER_METRICS = ("accuracy", "precision", "recall", "f1", "roc_auc", "brier", "log_loss")
_REGRESSOR_METRICS = ("rmse", "mae", "r2", "qlike")
_DRIFT_EVENTS = ("flagged", "validated")


IN_PLAY = ("active", "candidate")


def models_page() -> dict[str, Any]:
    """The models in play (active and candidates, by kind and score), then the newest of the others."""
    current = leaderboard(statuses=IN_PLAY, limit=None)
    current.sort(key=lambda m: (m["kind"], -(m["score"] if m["score"] is not None else float("-inf"))))
    others = leaderboard(statuses=("archived", "superseded", "failed"))
    return {"current": current, "history": others}


def leaderboard(
    statuses: tuple[str, ...] | None = None, limit: int | None = LEADERBOARD
) -> list[dict[str, Any]]:
    columns = (
        ModelRecord.name,
        ModelRecord.kind,
        ModelRecord.model_type,
        ModelRecord.version,
        ModelRecord.status,
        ModelRecord.score,
        ModelRecord.created_ts,
        ModelRecord.performance,
        ModelRecord.live_performance,
    )
    stmt = select(*columns).order_by(ModelRecord.created_ts.desc(), ModelRecord.id.desc()).limit(limit)
    if statuses is not None:
        stmt = stmt.where(ModelRecord.status.in_(statuses))  # type: ignore[attr-defined]
    champions = set(get_cache().snapshot.champions.values())
    with session_scope() as session:
        rows = session.exec(stmt).all()
    return [
        {
            "name": r.name,
            "kind": r.kind,
            "type": r.model_type,
            "version": r.version,
            "status": r.status,
            "score": r.score,
            "created_ts": common.iso(r.created_ts),
            "champion": r.name in champions,
            **common.skill_summary(r.performance or {}),
            "live_accuracy": (r.live_performance or {}).get("accuracy"),
            "live_n": int((r.live_performance or {}).get("trades_evaluated") or 0),
        }
        for r in rows
    ]


def _metrics_table(record: ModelRecord) -> list[dict[str, Any]]:
    perf = record.performance or {}
    found = common.intervals(perf)
    names = _CLASSIFIER_METRICS if record.kind in common.CLASSIFIER_KINDS else _REGRESSOR_METRICS
    rows = [
        {"metric": m, "value": perf[m], "interval": found.get(m)} for m in names if perf.get(m) is not None
    ]
    baselines = perf.get("baselines") or {}
    for name, value in baselines.items():
        score = value.get("rmse") if isinstance(value, dict) else value
        metric = "rmse" if isinstance(value, dict) else "accuracy"
        rows.append({"metric": f"{metric} of baseline '{name}'", "value": score, "interval": None})
    return rows


def _drift(events: list[Any]) -> dict[str, Any]:
    checks = [e for e in events if e.event in _DRIFT_EVENTS and "live_skill" in (e.numbers or {})]
    history = [
        {
            "ts": common.iso(e.created_ts),
            "metric": "skill",
            "validation": e.numbers.get("validation_skill"),
            "live": e.numbers.get("live_skill"),
            "live_interval": e.numbers.get("live_interval"),
            "drop": e.numbers.get("drop"),
            "threshold": e.numbers.get("threshold"),
            "p_value": e.numbers.get("p_value"),
            "flagged": bool(e.numbers.get("flagged")),
            "rows": e.numbers.get("live_rows"),
        }
        for e in checks
    ]
    latest = next((e for e in reversed(checks) if e.numbers.get("feature_drift")), None)
    features = []
    if latest is not None:
        for name, f in sorted(latest.numbers["feature_drift"].items()):
            features.append(
                {
                    "feature": name,
                    "psi": f.get("psi"),
                    "threshold": f.get("threshold"),
                    "day_to_day_psi": f.get("day_to_day_psi"),
                    "drifted": bool(f.get("drifted")),
                }
            )
    return {
        "history": history,
        "features": features,
        "features_ts": common.iso(latest.created_ts) if latest is not None else None,
    }


def _walk_forward(perf: dict[str, Any]) -> dict[str, Any] | None:
    """`performance.walk_forward` {folds, mean_skill}; a fold is a number or a dict with `skill`."""
    found = perf.get("walk_forward")
    if not isinstance(found, dict) or not found.get("folds"):
        return None
    folds = []
    for i, fold in enumerate(found["folds"]):
        skill = fold.get("skill") if isinstance(fold, dict) else fold
        interval = fold.get("skill_interval") if isinstance(fold, dict) else None
        folds.append({"fold": i + 1, "skill": skill, "interval": interval})
    return {"folds": folds, "mean_skill": found.get("mean_skill")}


def _lineage(family: str) -> list[dict[str, Any]]:
    stmt = (
        select(
            ModelRecord.name,
            ModelRecord.version,
            ModelRecord.status,
            ModelRecord.score,
            ModelRecord.created_ts,
        )
        .where(ModelRecord.family == family)
        .order_by(ModelRecord.version)
    )
    with session_scope() as session:
        rows = session.exec(stmt).all()
    return [
        {
            "name": r.name,
            "version": r.version,
            "status": r.status,
            "score": r.score,
            "created_ts": common.iso(r.created_ts),
        }
        for r in rows
    ]


def model_page(name: str) -> dict[str, Any]:
    record = get_model(name)
    perf = record.performance or {}
    events = model_events(record.name)
    training = record.training or {}
    trading = perf.get("trading") if isinstance(perf.get("trading"), dict) else None
    return {
        "name": record.name,
        "metadata": {
            "kind": record.kind,
            "type": record.model_type,
            "family": record.family,
            "version": record.version,
            "status": record.status,
            "champion": get_cache().snapshot.champions.get(record.kind) == record.name,
            "created_ts": common.iso(record.created_ts),
            "data_source": record.data_source,
            "timeframe": training.get("timeframe"),
            "horizon": training.get("horizon"),
            "symbols": training.get("symbols") or perf.get("symbols"),
            "train_start": training.get("train_start"),
            "train_end": training.get("train_end"),
            "holdout": [perf.get("start"), perf.get("end")],
            "holdout_rows": perf.get("n"),
            "holdout_rows_effective": perf.get("n_effective"),
            "description": record.description,
            "error": record.error,
        },
        "features": list(record.features),
        "hyperparams": record.hyperparams,
        "score": record.score,
        "skill": common.skill_summary(perf),
        "age": common.age(record.created_ts),
        "metrics": _metrics_table(record),
        "reliability": perf.get("reliability"),
        "coverage": perf.get("coverage"),
        "is_classifier": record.kind in common.CLASSIFIER_KINDS,
        "trading": trading and {k: v for k, v in trading.items() if k != "equity"},
        "equity": trading.get("equity") if trading else None,
        "walk_forward": _walk_forward(perf),
        "drift": _drift(events),
        "live": record.live_performance or {},
        "events": [common.event_view(e) for e in events],
        "lineage": _lineage(record.family),
    }
