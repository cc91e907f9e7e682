"""Pure ML: targets, datasets, the five model kinds, training and leak-free validation.

No FastAPI, SQL or Redis code here; candles asked for by symbol come through `app.ml.backend`.
"""

from __future__ import annotations

from app.ml.backend import load_model
from app.ml.base import BaseModel
from app.ml.ensembles import EnsemblePredictor
from app.ml.kinds import (
    DirectionPredictor,
    MomentumClassifier,
    PricePredictor,
    RiskScorer,
    VolatilityRegressor,
)
from app.ml.ranking import ModelRanker
from app.ml.registry import MODEL_KINDS, model_class_for
from app.ml.training import TrainingPipeline
from app.ml.validation import ValidationPipeline

__all__ = [
    "MODEL_KINDS",
    "BaseModel",
    "DirectionPredictor",
    "EnsemblePredictor",
    "ModelRanker",
    "MomentumClassifier",
    "PricePredictor",
    "RiskScorer",
    "TrainingPipeline",
    "ValidationPipeline",
    "VolatilityRegressor",
    "load_model",
    "model_class_for",
]
