"""What an operator can do from the dashboard, each through the service the API uses for it."""

from __future__ import annotations

from typing import Any

from app.core.errors import BadInput
from app.services import cycle as cycles
from app.services import models
from app.services.dashboard import tuning
from app.store.cache import get_cache

SETTABLE = ("active", "archived")


def force_cycle() -> dict[str, Any]:
    """Start a cycle now (as POST /cycles); CycleRunning (409) names the one already running."""
    cycle = cycles.start_cycle("operator", {})
    return {"id": cycle.id, "status": cycle.status}


def set_model_status(name: str, status: str) -> dict[str, Any]:
    """Activate or archive a model (as PATCH /models/{name}); this process reloads its champions at once."""
    if status not in SETTABLE:
        raise BadInput(f"status must be one of {', '.join(SETTABLE)}, not {status!r}")
    record = models.set_status(name, status, "set by an operator on the dashboard")
    get_cache().reload("status_change")
    return {"name": record.name, "status": record.status}


def start_tuning(definition: str) -> dict[str, Any]:
    if not definition:
        raise BadInput("name the model definition to tune (e.g. direction_predictor)")
    return tuning.start_study(definition)
