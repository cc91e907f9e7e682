"""A cycle row takes any number a stage records: NaN and infinities are stored as null, not refused.

Found by the multi-host test: a champion test of two identical models (df = inf) made Postgres refuse the
rank stage's write on every try, and the cycle failed.
"""

from __future__ import annotations

import math

from app.core.db import session_scope
from app.services.cycle.rows import read, update
from app.tables.cycles import Cycle


def test_non_finite_numbers_in_a_cycle_row_are_stored_as_null() -> None:
    with session_scope() as session:
        session.add(Cycle(id="f" * 32, trigger="operator", options={}))
    update("f" * 32, lambda c: c.results.__setitem__("ranking", {"df": math.inf, "p": math.nan, "n": 3}))
    assert read("f" * 32).results["ranking"] == {"df": None, "p": None, "n": 3}
