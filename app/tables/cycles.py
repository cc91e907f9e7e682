"""One row per model cycle: what started it, where it is, each model's progress, results and timings."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Column
from sqlmodel import Field, SQLModel

from app.tables.models import UTCDateTime, utcnow

CYCLE_STATUSES = ("queued", "running", "succeeded", "partial", "failed", "interrupted")
FINISHED_STATUSES = ("succeeded", "partial", "failed", "interrupted")
CYCLE_TRIGGERS = ("cron", "operator", "cli", "replay")
CYCLE_STAGES = ("queued", "ingest", "build", "rank", "drift", "retrain", "finish", "done")


class Cycle(SQLModel, table=True):
    """A cycle (DESIGN 6). `progress` is keyed by model definition name; `results` holds the decisions."""

    __tablename__ = "cycles"

    id: str = Field(primary_key=True, max_length=40)
    status: str = Field(default="queued", index=True, max_length=16, description=" | ".join(CYCLE_STATUSES))
    trigger: str = Field(default="operator", max_length=16, description=" | ".join(CYCLE_TRIGGERS))
    stage: str = Field(default="queued", max_length=16, description=" | ".join(CYCLE_STAGES))
    progress: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    results: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    timings: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    errors: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    options: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    created_ts: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))
    started_ts: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))
    finished_ts: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))
    fence: int | None = Field(
        default=None, sa_column=Column(BigInteger, nullable=True),
        description="fencing token taken with the lock; a write carrying an older one is refused",
    )
    heartbeat_ts: datetime | None = Field(
        default=None, sa_column=Column(UTCDateTime, nullable=True),
        description="last sign of life of one of its jobs (the lock's heartbeat, also kept in the database)",
    )


class CycleFence(SQLModel, table=True):
    """The newest fencing token handed to a cycle (one row). Every cycle write checks its own against it."""

    __tablename__ = "cycle_fence"

    name: str = Field(primary_key=True, max_length=16)
    token: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))
