"""Model rows (the seed's metadata, queryable) and the audit trail of every decision about a model."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, Column, DateTime, TypeDecorator
from sqlmodel import Field, SQLModel

MODEL_STATUSES = ("candidate", "active", "archived", "superseded", "failed")
MODEL_EVENTS = (
    "trained", "validated", "promoted", "archived", "superseded", "rejected", "flagged", "failed",
    "status_changed", "needs_tuning",
)


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator):
    """A timestamp that is always tz-aware UTC when read back, on Postgres and on SQLite alike.

    SQLite keeps no offset, so values are stored as naive UTC there and re-tagged as UTC on the way out.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column; pass a tz-aware value")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class ModelRecord(SQLModel, table=True):
    """One stored model: where its files are, their hashes, and everything metadata.json says about it."""

    __tablename__ = "models"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(unique=True, index=True, max_length=128, description="<family>_<NNN>")
    family: str = Field(index=True, max_length=120, description="the definition name without version")
    kind: str = Field(index=True, max_length=16, description="direction|risk|price|momentum|volatility")
    model_type: str = Field(max_length=32, description="xgboost|random_forest|torch_mlp|svm|...")
    version: int
    status: str = Field(default="candidate", index=True, max_length=16)
    store_dir: str = Field(max_length=64, description="model_NNN under MODEL_STORE_DIR")
    artifact_sha256: dict[str, str] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    features: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    hyperparams: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    training: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    performance: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    live_performance: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    score: float | None = Field(default=None, description="100 x skill on the holdout (DESIGN 5)")
    data_source: str = Field(default="simulated", max_length=16)
    description: str = ""
    created_ts: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))
    error: str | None = None


class ModelEvent(SQLModel, table=True):
    """One decision or observation about a model, with the numbers it was based on."""

    __tablename__ = "model_events"

    id: int | None = Field(default=None, primary_key=True)
    model_name: str = Field(index=True, max_length=128)
    event: str = Field(max_length=16, description=" | ".join(MODEL_EVENTS))
    reason: str = ""
    numbers: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    cycle_id: str | None = Field(default=None, index=True, max_length=64)
    created_ts: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))
