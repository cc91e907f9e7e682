"""The project's RQ queues, named `<QUEUE_PREFIX>:<kind>` so several deployments can share one Redis."""

from __future__ import annotations

from rq import Queue

from app.core.config import get_settings
from app.core.errors import BadInput
from app.core.redis import get_redis

INGEST = "ingest"
CYCLE = "cycle"
TRAIN = "train"
TUNE = "tune"
DEFAULT = "default"

# The order a worker listens in: the 1-minute ingest must not wait behind a long training job, and the
# cycle's orchestration jobs are short and unblock the builds; tuning trials (DESIGN 10) come after the
# cycle's own builds.
KINDS: tuple[str, ...] = (INGEST, CYCLE, TRAIN, TUNE, DEFAULT)


def queue_name(kind: str) -> str:
    """The full Redis-side name of a queue kind (`ingest` -> `mlpipe:ingest`); full names pass through."""
    prefix = get_settings().queue_prefix
    if kind in KINDS:
        return f"{prefix}:{kind}"
    if kind.startswith(f"{prefix}:") and kind.split(":", 1)[1] in KINDS:
        return kind
    raise BadInput(f"unknown queue {kind!r}; known: {', '.join(KINDS)} (or with the '{prefix}:' prefix)")


def all_queue_names() -> list[str]:
    """Every queue a worker serves by default, highest priority first."""
    return [queue_name(kind) for kind in KINDS]


def get_queue(name: str) -> Queue:
    """The RQ queue for a kind (`ingest`, `cycle`, `train`, `tune`, `default`) or a full name."""
    return Queue(queue_name(name), connection=get_redis())
