"""Model kinds by name: DESIGN kinds and the seed's `type` strings."""

from __future__ import annotations

from app.core.errors import BadInput
from app.ml.base import BaseModel
from app.ml.kinds import (
    DirectionPredictor,
    MomentumClassifier,
    PricePredictor,
    RiskScorer,
    VolatilityRegressor,
)

MODEL_KINDS: dict[str, type[BaseModel]] = {
    cls.kind: cls
    for cls in (DirectionPredictor, RiskScorer, PricePredictor, MomentumClassifier, VolatilityRegressor)
}
_ALIASES: dict[str, type[BaseModel]] = {
    "xgboost": DirectionPredictor,
    "random_forest": RiskScorer,
    "torch": PricePredictor,
    "torch_mlp": PricePredictor,
    "neural_network": PricePredictor,
    "svm": MomentumClassifier,
    "gradient_boosting": VolatilityRegressor,
}


def model_class_for(name: str) -> type[BaseModel]:
    """The class for a kind ('direction', ...), a seed type ('xgboost', ...) or a class name."""
    key = str(name).strip().lower()
    found = MODEL_KINDS.get(key) or _ALIASES.get(key)
    if found is None:
        found = next((c for c in MODEL_KINDS.values() if c.__name__.lower() == key), None)
    if found is None:
        known = sorted({*MODEL_KINDS, *_ALIASES})
        raise BadInput(f"unknown model type or kind {name!r}; known: {', '.join(known)}")
    return found
