from __future__ import annotations

from sqlalchemy import BigInteger, Column
from sqlmodel import Field, SQLModel


class Candle(SQLModel, table=True):
    """One OHLCV candle. `ts` is the open time in UTC milliseconds, aligned to the timeframe."""

    __tablename__ = "candles"

    symbol: str = Field(primary_key=True, max_length=32)
    timeframe: str = Field(primary_key=True, max_length=8)
    ts: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    open: float
    high: float
    low: float
    close: float
    volume: float
    source: str = Field(max_length=16, description="exchange | csv | simulated")
