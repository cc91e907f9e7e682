"""Served predictions, kept so they can be scored once their horizon has passed (live performance)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, BigInteger, Column, Index
from sqlmodel import Field, SQLModel


class Prediction(SQLModel, table=True):
    """One answer the API gave; `due_ts` is when its outcome is known (as_of + horizon bars)."""

    __tablename__ = "predictions"
    __table_args__ = (Index("ix_predictions_unscored", "scored", "due_ts"),)

    id: int | None = Field(default=None, primary_key=True)
    request_id: str = Field(max_length=32, unique=True, description="set by the API: re-draining is a no-op")
    model_name: str = Field(index=True, max_length=128)
    kind: str = Field(max_length=16)
    version: int
    symbol: str | None = Field(default=None, max_length=32)
    timeframe: str = Field(default="1m", max_length=8)
    horizon: int = Field(description="bars of `timeframe` until the outcome is known")
    as_of_ts: int = Field(sa_column=Column(BigInteger, nullable=False), description="candle open time, ms")
    due_ts: int = Field(sa_column=Column(BigInteger, nullable=False))
    served_ts: int = Field(sa_column=Column(BigInteger, nullable=False))
    data_source: str = Field(default="", max_length=16)
    answer: Any = Field(default=None, sa_column=Column(JSON, nullable=True))
    ensemble_id: int | None = Field(default=None, description="set when the answer was an ensemble blend")
    scored: bool = Field(default=False)
    correct: bool | None = None
    outcome: float | None = None
