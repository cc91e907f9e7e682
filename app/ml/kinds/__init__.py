"""The five model kinds of DESIGN section 4, one small module each."""

from app.ml.kinds.direction import DirectionPredictor
from app.ml.kinds.momentum import MomentumClassifier
from app.ml.kinds.price import PricePredictor
from app.ml.kinds.risk import RiskScorer
from app.ml.kinds.volatility import VolatilityRegressor

__all__ = ["DirectionPredictor", "MomentumClassifier", "PricePredictor", "RiskScorer", "VolatilityRegressor"]
