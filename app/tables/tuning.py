"""Tuning studies (DESIGN 10) and the definition versions they adopted.

Optuna keeps its own tables (studies, trials, ...) in the same database through its RDB storage; a
`TuningStudy` row is the project's record of one study: what it tunes, its budget, the window and
holdout cut, its state and its result. A `DefinitionVersion` is an adopted definition: the newest
version of a name replaces that definition's config and features in later cycles (config/models.yaml is
never rewritten).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, UniqueConstraint
from sqlmodel import Field, SQLModel

from app.tables.models import UTCDateTime, utcnow

STUDY_STATUSES = ("queued", "running", "finishing", "finished", "failed")
STUDY_TRIGGERS = ("cycle", "cli", "api")


class TuningStudy(SQLModel, table=True):
    __tablename__ = "tuning_studies"

    id: str = Field(primary_key=True, max_length=40)
    definition: str = Field(index=True, max_length=120, description="the definition name tuned")
    kind: str = Field(max_length=16)
    status: str = Field(default="queued", index=True, max_length=16, description=" | ".join(STUDY_STATUSES))
    trigger: str = Field(default="cli", max_length=16, description=" | ".join(STUDY_TRIGGERS))
    cycle_id: str | None = Field(default=None, index=True, max_length=64)
    optuna_name: str = Field(max_length=80, description="the Optuna study's name in its RDB storage")
    budget: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    base: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False),
                                 description="the current definition the study starts from")
    space: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    window: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False),
                                   description="symbols, start_ms, cut_ms (holdout start), end_ms, folds")
    result: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    error: str | None = None
    created_ts: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))
    started_ts: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))
    finished_ts: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))


class DefinitionVersion(SQLModel, table=True):
    __tablename__ = "definition_versions"
    __table_args__ = (UniqueConstraint("name", "version"),)

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(index=True, max_length=120)
    version: int
    definition: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    study_id: str | None = Field(default=None, max_length=40)
    reason: str = ""
    numbers: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    created_ts: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))
