"""Starting a cycle: the row, the one-at-a-time lock and the first job; then the start stage itself
(catch-up ingest, the rolling window, one build job per definition)."""

from __future__ import annotations

import time
import uuid
from typing import Any

from sqlmodel import select

from app.core.config import get_settings
from app.core.db import session_scope
from app.core.errors import BadInput, Conflict
from app.core.logging import get_logger
from app.services.cycle import data as cycle_data
from app.services.cycle import lock as cycle_lock
from app.services.cycle.definitions import check_buildable, load_definitions, window_days
from app.services.cycle.finish import fail_cycle
from app.services.cycle.flow import enqueue_builds, enqueue_start, set_stage
from app.services.cycle.recovery import get_cycle, recover_interrupted
from app.services.cycle.rows import LIVE_STATUSES, error_entry, now, update
from app.services.definition_versions import adopted_with_versions
from app.tables.cycles import CYCLE_TRIGGERS, Cycle
from app.tables.models import utcnow

log = get_logger(__name__)


class CycleRunning(Conflict):
    """A cycle is already running; `running_id` says which."""

    def __init__(self, running_id: str) -> None:
        super().__init__(
            f"cycle {running_id} is still running; wait for it (GET /cycles/{running_id}) or for its lock "
            f"to expire ({cycle_lock.lock_ttl()}s after its last job) before starting another"
        )
        self.running_id = running_id


def start_cycle(trigger: str = "operator", options: dict[str, Any] | None = None) -> Cycle:
    """Create a cycle, take the lock (or raise `CycleRunning` with the holder's id) and enqueue its first job.

    `options` (tests, benchmarks, operators): `window_days`, `definitions` (inline list replacing the
    config file), `models_file`, `symbols`, `ingest` (False skips the catch-up), `build_timeout`,
    `as_of_ms` (a replay step: the cycle's "now", so it sees no candle after it).
    """
    if trigger not in CYCLE_TRIGGERS:
        raise BadInput(f"unknown trigger {trigger!r}; one of {', '.join(CYCLE_TRIGGERS)}")
    options = dict(options or {})
    # The newest adopted version of each definition (tuning, DESIGN 10) replaces its config and features.
    definitions, versions = adopted_with_versions(load_definitions(options))
    check_buildable(definitions)  # a broken config fails here, in front of the operator
    # Frozen into the cycle: an operator editing config/models.yaml mid-cycle changes the next cycle only.
    # The window first: with the definitions inlined, the file's `defaults.window_days` is no longer read.
    options["window_days"] = window_days(options)
    options["definitions"] = definitions
    options["definition_versions"] = versions
    recover_interrupted()
    cycle_id = uuid.uuid4().hex
    running = cycle_lock.acquire(cycle_id)
    if running is not None:
        raise CycleRunning(running)
    try:
        with session_scope(write=True) as session:
            fence = cycle_lock.take_fence(session)  # locks the token row: starts are serialised here
            _refuse_if_alive(session, cycle_id)
            session.add(Cycle(id=cycle_id, trigger=trigger, options=options, fence=fence,
                              heartbeat_ts=utcnow(), timings={"queued_at": time.time()}))
        enqueue_start(cycle_id)
    except BaseException:
        cycle_lock.release(cycle_id)
        raise
    log.info("cycle queued", cycle_id=cycle_id, trigger=trigger)
    return get_cycle(cycle_id)


def _refuse_if_alive(session: Any, cycle_id: str) -> None:
    """The Redis lock was free, but a live cycle whose job beat recently is still working (Redis lost
    its lock: a restart, FLUSHALL or failover): it takes the lock back at its next beat."""
    stmt = select(Cycle).where(Cycle.status.in_(LIVE_STATUSES), Cycle.id != cycle_id)  # type: ignore[attr-defined]
    for other in session.exec(stmt).all():
        if cycle_lock.lease_fresh(other):
            raise CycleRunning(other.id)


def cycle_symbols(options: dict[str, Any]) -> list[str]:
    return list(options.get("symbols") or get_settings().symbols)


def start(cycle_id: str) -> list[str]:
    """Mark the cycle running, catch up candles, fix the window, enqueue the builds; return their names.

    A retry (its first try died) keeps the window and progress of the first, and enqueues only the build
    jobs that do not exist yet (jobs have fixed ids), so no build runs twice.
    """
    cycle = update(cycle_id, _mark_running)
    options = cycle.options
    symbols = cycle_symbols(options)
    if "window" in cycle.results:
        names = [d["name"] for d in load_definitions(options)]
        if cycle.stage in ("queued", "ingest"):
            set_stage(cycle_id, "build")
        enqueue_builds(cycle_id, names, options.get("build_timeout"))
        return names
    set_stage(cycle_id, "ingest")
    try:
        report = cycle_data.catch_up(symbols) if options.get("ingest", True) else {"skipped": True}
        anchor = cycle_data.anchor_ts(symbols, options.get("as_of_ms"))
        definitions = load_definitions(options)
    except Exception as exc:  # noqa: BLE001 - any reason is the cycle's reason to fail
        fail_cycle(cycle_id, "ingest", f"{type(exc).__name__}: {getattr(exc, 'message', exc)}")
        return []
    days = window_days(options)
    window = {
        "start_ms": int(anchor - days * cycle_data.DAY_MS) + 60_000,
        "end_ms": int(anchor),
        "days": days,
    }

    def planned(cycle: Cycle) -> None:
        if "window" in cycle.results:  # a retried start: the plan (and its progress) stands
            return
        cycle.results["ingest"] = report
        cycle.results["window"] = window
        cycle.results["symbols"] = symbols
        if report.get("warning"):
            cycle.errors.append(error_entry("ingest", report["warning"], level="warning"))
        for definition in definitions:
            cycle.progress[definition["name"]] = {
                "type": definition["type"],
                "stage": "build",
                "state": "queued",
                "attempts": 0,
            }

    update(cycle_id, planned)
    set_stage(cycle_id, "build")
    names = [d["name"] for d in definitions]
    enqueue_builds(cycle_id, names, options.get("build_timeout"))
    return names


def _mark_running(cycle: Cycle) -> None:
    if cycle.status == "queued":
        cycle.status = "running"
        cycle.started_ts = now()
        cycle.timings["started_at"] = time.time()


def start_from_cron() -> str | None:
    """The 12-hour cron entry: start a cycle unless one is running (then this tick is skipped)."""
    try:
        return start_cycle("cron").id
    except CycleRunning as exc:
        log.warning("cron cycle skipped: one is running", running=exc.running_id)
        return None
