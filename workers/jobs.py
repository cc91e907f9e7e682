"""Thin RQ jobs: primitive arguments in, one service call, a small picklable result out.

Imports of the services happen inside each job, so a worker starts fast and a job module that fails to
import fails only its own jobs.
"""

from __future__ import annotations

import os
import socket
from typing import Any


def ingest_tick_job() -> list[Any]:
    """The 1-minute cron job: append the candles that closed since the last one, for every symbol."""
    from app.services.ingest import ingest_tick

    return ingest_tick()


def ping_job(x: int) -> dict[str, Any]:
    """A real, trivial job: proves a job travels through Redis to a worker and its result comes back.

    The result carries the executing process, so a caller can tell that a worker (not itself) ran it.
    """
    return {"x": x, "square": x * x, "pid": os.getpid(), "host": socket.gethostname()}


def drain_predictions_job() -> int:
    """Every minute: move served predictions logged in Redis into the database (batched)."""
    from app.services.prediction_log import drain_predictions

    return drain_predictions()


def score_predictions_job() -> dict[str, Any]:
    """Every 5 minutes: score predictions whose horizon has passed; refresh models' live_performance."""
    from app.services.prediction_log import drain_predictions, score_predictions

    drain_predictions()
    return score_predictions()


def sweep_store_job() -> dict[str, Any]:
    """Every hour: remove what crashed writers left in the model store, and rewrite metadata.json copies
    that lag their rows (a rewrite that failed after its commit)."""
    from app.services.models import sweep_store

    return sweep_store()


def replay_job(spec: dict[str, Any]) -> dict[str, Any]:
    """POST /replays: run (or resume) a replay; it starts its own worker processes for its cycles."""
    from app.services.replay import run_replay

    report = run_replay(spec)
    return {"replay_id": report["replay_id"], "steps": len(report["steps"]), "directory": report["directory"]}
