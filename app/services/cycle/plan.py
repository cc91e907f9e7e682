"""Applying a stage's decisions: every model status change of a plan in ONE transaction, fenced.

A plan is plain data: model name -> (target status, reason, numbers). `apply_plan` makes all of it, or
none of it, in one database transaction that also checks the cycle's fencing token (a job whose cycle was
superseded is refused whole) and records the cycle's own summary. Promotions come before archives, so at
no point inside the transaction is a kind left without an active model, and API processes are told to
reload only after the commit: every request sees the old champions or the new ones, never none.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from app.core.db import session_scope
from app.services.cycle import lock as cycle_lock
from app.services.cycle.rows import update_in
from app.services.models import change_status, record_event
from app.tables.cycles import Cycle

Plan = dict[str, tuple[str, str, dict[str, Any]]]


Events = list[tuple[str, str, str, dict[str, Any]]]  # model name, event, reason, numbers


def apply_plan(
    cycle_id: str, plan: Plan, record: Callable[[Cycle], None] | None = None, events: Events | None = None
) -> dict[str, str]:
    """Apply `plan` (plus `events` to record and `record`, a change to the cycle's row) in one fenced
    transaction.

    Returns name -> new status for the models that changed (a model already in its target status is left
    as it is). Raises `LockLost` (nothing applied) if this job's cycle lost its lock.
    """
    lease = cycle_lock.current_lease(cycle_id)
    ordered = sorted(plan.items(), key=lambda item: item[1][0] != "active")  # promote first
    changed: dict[str, str] = {}
    with session_scope(write=True) as session:
        if lease is not None:
            lease.check_fence(session)
        for name, (status, reason, numbers) in ordered:
            if change_status(session, name, status, reason, numbers=numbers, cycle_id=cycle_id) is not None:
                changed[name] = status
        for name, event, reason, numbers in events or ():
            record_event(name, event, reason, numbers=numbers, cycle_id=cycle_id, session=session)
        if record is not None:
            update_in(session, cycle_id, record)
    return changed
