"""Features: the registry of named features, resampling, and the FeatureManager (DESIGN 3).

Importing this package loads no database code: `FeatureManager` (which reads stored candles) is imported
on first use, so `app.ml` can compute features without SQLAlchemy.
"""

from typing import Any

from app.features.compute import DEFAULT_FEATURES, compute_features, market_symbols, required_warmup
from app.features.registry import (
    FEATURES,
    FeatureDef,
    feature_names,
    get_feature,
    is_scale_free,
    pattern_names,
)
from app.features.resample import resample
from app.features.scale_free import scale_free_features, scale_free_form

__all__ = [
    "DEFAULT_FEATURES",
    "FEATURES",
    "FeatureDef",
    "FeatureManager",
    "compute_features",
    "feature_names",
    "get_feature",
    "is_scale_free",
    "market_symbols",
    "pattern_names",
    "required_warmup",
    "resample",
    "scale_free_features",
    "scale_free_form",
]


def __getattr__(name: str) -> Any:
    if name == "FeatureManager":
        from app.features.manager import FeatureManager

        return FeatureManager
    raise AttributeError(f"module 'app.features' has no attribute {name!r}")
