"""Every SQLModel table, imported here so `SQLModel.metadata` (and Alembic) sees them all."""

from app.tables.api_keys import ApiKey  # noqa: F401
from app.tables.candles import Candle
from app.tables.cycles import Cycle, CycleFence  # noqa: F401
from app.tables.ensembles import EnsembleRecord  # noqa: F401
from app.tables.models import ModelEvent, ModelRecord  # noqa: F401
from app.tables.predictions import Prediction  # noqa: F401
from app.tables.tuning import DefinitionVersion, TuningStudy  # noqa: F401

__all__ = ["Candle"]
