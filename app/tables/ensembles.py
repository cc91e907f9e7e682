"""Ensembles: a blend of same-kind models, its config file, and its latest backtest."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column
from sqlmodel import Field, SQLModel

from app.tables.models import UTCDateTime, utcnow

ENSEMBLE_STATUSES = ("candidate", "active", "rejected")


class EnsembleRecord(SQLModel, table=True):
    """One ensemble; `status` becomes active only when its backtest beats every member (the seed's rule)."""

    __tablename__ = "ensembles"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(unique=True, index=True, max_length=64, description="ensemble_NNN")
    kind: str = Field(max_length=16)
    method: str = Field(max_length=16, description="weighted_avg | voting | stacking")
    models: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    weights: list[float] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    meta: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    status: str = Field(default="candidate", max_length=16)
    results: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    description: str = ""
    created_ts: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))
    backtested_ts: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))
