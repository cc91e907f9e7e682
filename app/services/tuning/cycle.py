"""The cycle's tuning step (DESIGN 6 and 10): a drifting definition that retraining did not mend gets a
study, bounded by TUNING_CYCLE_TRIALS and TUNING_CYCLE_SECONDS so the cycle's 12-hour slot holds it.

The study tunes the definition as this cycle built it, on this cycle's window, and runs on the workers'
`tune` queue while the cycle finishes; its result (adopted or not) is the study's, and an adopted version
is what the next cycle builds. One study per definition at a time: a definition already being tuned is
not tuned twice.
"""

from __future__ import annotations

from typing import Any

from app.core.config import get_settings
from app.core.logging import get_logger
from app.services.tuning.studies import LIVE, list_study_rows, start_study
from app.tables.cycles import Cycle

log = get_logger(__name__)


def _definition(cycle: Cycle, family: str, fallback: dict[str, Any] | None) -> dict[str, Any] | None:
    found = next((d for d in cycle.options.get("definitions") or [] if d.get("name") == family), None)
    return dict(found) if found is not None else fallback


def tune_for_cycle(cycle: Cycle, family: str, fallback: dict[str, Any] | None = None) -> dict[str, Any]:
    """Start a study of `family` for this cycle; {"study_id": ...} or {"skipped": why}. Never raises: a
    study that cannot start is a warning of the cycle, not its failure."""
    settings = get_settings()
    if settings.tuning_cycle_trials <= 0:
        return {"skipped": "TUNING_CYCLE_TRIALS is 0: the cycle starts no studies"}
    running = [s for s in list_study_rows(limit=50, definition=family) if s.status in LIVE]
    if running:
        return {"skipped": f"study {running[0].id} of {family} is still running", "study_id": running[0].id}
    definition = _definition(cycle, family, fallback)
    if definition is None:
        return {"skipped": f"the cycle holds no definition {family!r}"}
    options = {"window": cycle.results.get("window") or {}, "symbols": cycle.results.get("symbols"),
               "definitions": [definition]}
    try:
        study = start_study(family, trials=settings.tuning_cycle_trials,
                            minutes=settings.tuning_cycle_seconds / 60, trigger="cycle", options=options,
                            cycle_id=cycle.id, base=definition)
    except Exception as exc:  # noqa: BLE001 - the cycle goes on without a study
        message = f"{type(exc).__name__}: {getattr(exc, 'message', exc)}"
        log.warning("cycle could not start a tuning study", cycle_id=cycle.id, definition=family,
                    error=message)
        return {"skipped": f"the study could not start: {message}"}
    log.info("cycle started a tuning study", cycle_id=cycle.id, definition=family, study_id=study.id)
    return {"study_id": study.id, "budget": study.budget}
