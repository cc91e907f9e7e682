"""The model cycle (DESIGN 6), one module per stage.

    start.py     the row, the lock, the first job; catch-up ingest and the window; one build per definition
    build.py     train, validate and save one definition (a candidate, or a failed row)
    rank.py      champions and the active set
    drift.py     every active model on its newest unseen hours
    retrain.py   a flagged model's next version, old and new on the same fresh rows
    finish.py    succeeded / partial / failed, the lock released

    rows.py      the cycle's row repository;  recovery.py  reads, and lost cycles marked interrupted
    flow.py      which RQ job follows which;  lock.py  one cycle at a time
    definitions.py, data.py, training.py   what a cycle builds, on which candles, through app.ml
"""

from app.services.cycle.finish import fail_cycle, finish_cycle
from app.services.cycle.recovery import get_cycle, is_live, list_cycles, recover_interrupted
from app.services.cycle.rows import cycle_view
from app.services.cycle.start import CycleRunning, start_cycle

__all__ = [
    "CycleRunning",
    "cycle_view",
    "fail_cycle",
    "finish_cycle",
    "get_cycle",
    "is_live",
    "list_cycles",
    "recover_interrupted",
    "start_cycle",
]
