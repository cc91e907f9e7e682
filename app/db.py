"""The seed guide's `db.*` calls, over the same services the cycle uses (`from app import db`).

The seed's drift and retrain snippets call a `db` it never defines. This is it: every call goes through
`app.services` (status changes are the lifecycle's transitions with their `model_events` rows, flags are
the drift stage's `flagged` events, ensembles their table), never around them. Beside those, the names the
seed leaves undefined, with the meanings docs/seed-guide.md gives them:

- `load_model(name)`: `app.ml.load_model` (a name, or a store directory such as `model_001`).
- `save_model(name, model)`: save as `name` (the seed's argument order), a candidate until promoted.
- `get_latest_data()`: the newest window of stored candles of `SYMBOLS`, `{symbol: candles}`, what a
  cycle trains on (7 days unless told).
- `active_models()`: the names of the active models (the seed's `active_models`).

Metrics read back (`get_last_backtest`, `get_validation_results`) are a model's holdout validation, the
numbers it was ranked on, with the seed's accuracy/precision/recall/F1 on top for regressors too.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pandas as pd

from app.core.config import get_settings
from app.ml.backend import get_backend, load_model
from app.ml.validation import seed_metrics
from app.services import ensembles, models
from app.services.cycle.definitions import DEFAULT_WINDOW_DAYS

__all__ = [
    "active_models", "flag_for_retraining", "get_flagged_for_retraining", "get_last_backtest",
    "get_latest_data", "get_validation_results", "load_model", "save_model", "set_ensemble_active",
    "update_model_status",
]

# A flag stands until one of these later events about the model answers it: a drift check that found
# nothing, a retrain decided (kept or replaced), or the model leaving service.
_RESOLVING = ("validated", "rejected", "superseded", "archived")


def update_model_status(model_name: str, status: str, reason: str = "set by hand (app.db)") -> str:
    """Move a model along its lifecycle (DESIGN 6: candidate -> active | archived, active -> superseded
    | archived); an impossible move is refused with the allowed ones. Returns the new status."""
    return models.set_status(model_name, status, reason).status


def _performance(model_name: str) -> dict[str, Any]:
    return seed_metrics(dict(models.get_model(model_name).performance or {}))


def get_validation_results(model_name: str) -> dict[str, Any]:
    """The model's holdout validation (DESIGN 5): accuracy, precision, recall, f1 (or rmse, mae, r2),
    skill with its interval, baselines, n, window."""
    return _performance(model_name)


def get_last_backtest(model_name: str) -> dict[str, Any]:
    """The backtest the model was last ranked on: its holdout validation (as `get_validation_results`;
    live checks are `ValidationPipeline().validate_on_live_data`, which the seed compares with this)."""
    return _performance(model_name)


def flag_for_retraining(model_name: str, reason: str = "", numbers: dict[str, Any] | None = None) -> None:
    """Record a `flagged` event (the drift stage's own), so `get_flagged_for_retraining` lists the model
    until a drift check clears it or a retrain decides about it."""
    models.get_model(model_name)  # an unknown name is a clear NotFound, not a silent event
    models.record_event(model_name, "flagged", reason or "flagged for retraining (app.db)", numbers=numbers)


def get_flagged_for_retraining() -> list[str]:
    """Active models whose newest flag (by hand or by a cycle's drift stage) nothing answered since."""
    flagged = []
    for record in models.list_models(status="active"):
        latest = None
        for event in models.model_events(record.name):
            if event.event == "flagged":
                latest = "flagged"
            elif event.event in _RESOLVING:
                latest = None
        if latest:
            flagged.append(record.name)
    return sorted(flagged)


def set_ensemble_active(ensemble: str) -> str:
    """Mark an ensemble active (the seed's "if ensemble > individuals, use it"). Returns its status."""
    return ensembles.set_status(ensemble, "active").status


def active_models(kinds: Iterable[str] | None = None) -> list[str]:
    """Names of the active models, optionally of some kinds only (oldest first)."""
    wanted = None if kinds is None else set(kinds)
    rows = models.list_models(status="active")
    return [r.name for r in reversed(rows) if wanted is None or r.kind in wanted]


def save_model(name: str, model: Any) -> str:
    """Save a fitted model as `name` (`<family>_NNN`, or a bare family for its next version) through
    the store: atomic, hashed, a candidate until promoted. Returns the stored name."""
    return get_backend().save_model(model, name)


def get_latest_data(
    symbols: Iterable[str] | None = None, days: float = DEFAULT_WINDOW_DAYS, timeframe: str = "1m"
) -> dict[str, pd.DataFrame]:
    """The newest `days` of stored candles (default: the cycle's 7) of `symbols` (default: `SYMBOLS`):
    `{symbol: candles}`, what `TrainingPipeline.train_model` takes as training data."""
    from app.data.frames import bars_per_day

    chosen = list(symbols or get_settings().symbols)
    return get_backend().load_window(chosen, timeframe, int(days * bars_per_day(timeframe)))
