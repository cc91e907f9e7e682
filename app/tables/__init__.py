"""Every SQLModel table, imported here so `SQLModel.metadata` (and Alembic) sees them all."""

from app.tables.candles import Candle

__all__ = ["Candle"]
