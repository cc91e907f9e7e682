"""Features: the registry of named features, resampling, and the FeatureManager (DESIGN 3)."""

from app.features.manager import DEFAULT_FEATURES, FeatureManager, compute_features, required_warmup
from app.features.registry import (
    FEATURES,
    FeatureDef,
    feature_names,
    get_feature,
    is_scale_free,
    pattern_names,
)
from app.features.resample import resample

__all__ = [
    "DEFAULT_FEATURES",
    "FEATURES",
    "FeatureDef",
    "FeatureManager",
    "compute_features",
    "feature_names",
    "get_feature",
    "is_scale_free",
    "pattern_names",
    "required_warmup",
    "resample",
]
