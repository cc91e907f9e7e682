"""Build a model from a seed-style definition and candles; hand it to the store to save."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from app.core.errors import BadInput
from app.data.frames import OHLCV
from app.features import required_warmup
from app.ml.backend import get_backend
from app.ml.base import BaseModel
from app.ml.registry import model_class_for
from app.ml.walk_forward import DEFAULT_FOLDS

_DEF_KEYS = {
    "type", "kind", "name", "config", "features", "horizon", "timeframe", "data_source", "description",
    "walk_forward_folds", "window_days",
}


def model_from_definition(model_def: Mapping[str, Any]) -> BaseModel:
    """`{'type': 'xgboost', 'config': {...}, 'features': [...], 'horizon': 5, 'timeframe': '1m'}` -> model."""
    unknown = sorted(set(model_def) - _DEF_KEYS)
    if unknown:
        raise BadInput(f"unknown keys {unknown} in the model definition; allowed: {sorted(_DEF_KEYS)}")
    kind = model_def.get("type") or model_def.get("kind")
    if not kind:
        raise BadInput("a model definition needs 'type' (e.g. 'xgboost') or 'kind' (e.g. 'direction')")
    cls = model_class_for(kind)
    params = dict(model_def.get("config") or {})
    for key in ("features", "horizon", "timeframe"):
        if model_def.get(key) is not None:
            params[key] = model_def[key]
    allowed = cls._get_param_names()
    wrong = sorted(set(params) - set(allowed))
    if wrong:
        raise BadInput(f"{cls.__name__} has no parameters {wrong}; it takes {allowed}")
    if params.get("horizon") is None and params.get("timeframe") is not None:
        params["horizon"] = cls.default_horizon(str(params["timeframe"]))  # one hour of 5m bars, ...
    model = cls(**params)
    model.check_params()
    return model


def folds_of(model_def: Mapping[str, Any]) -> int:
    """The definition's walk-forward folds K (DESIGN 5: 4 unless it says otherwise; 0 turns them off)."""
    value = model_def.get("walk_forward_folds", DEFAULT_FOLDS)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise BadInput(f"walk_forward_folds must be a whole number >= 0, got {value!r}")
    return value


class TrainingPipeline:
    """The seed's pipeline form: train_model(model_def, training_data), then save_model(name, model)."""

    def train_model(
        self,
        model_def: Mapping[str, Any] | None = None,
        training_data: Mapping[str, pd.DataFrame] | None = None,
        *,
        model_type: str | None = None,
        config: Mapping[str, Any] | None = None,
        history: Mapping[str, pd.DataFrame] | None = None,
    ) -> BaseModel:
        """Fit on the train part of `training_data`; holdout metrics in `performance_`.

        `history`: candles from before the window, for a model that reads longer history
        (`BaseModel.history_days`, e.g. the volatility model's time-of-day profile).

        The definition is `model_def`, or (the seed's retrain form) `model_type=old.type,
        config=old.config`: the same kind with every parameter of the old model (features included).

        `training_data` maps symbol -> candles (as `load_candles` returns), or symbol -> a FeatureManager
        frame as in the seed: then its columns are the model's features (unless the definition names
        them) and the candles behind it are read from the store. The recorded `data_source` is the
        definition's `data_source`, else the stored candles' source when they came from the store, else
        `unknown` (candles handed in are not looked up: this path needs no database).
        """
        if model_def is None:
            if model_type is None:
                raise BadInput("pass a model definition, or model_type= (e.g. 'xgboost') and config=")
            model_def = {"type": model_type, "config": dict(config or {})}
        elif model_type is not None or config is not None:
            raise BadInput("pass either a model definition or model_type=/config=, not both")
        if training_data is None:
            raise BadInput("pass training_data: {symbol: candles or a FeatureManager frame}")
        model = model_from_definition(model_def)
        folds = folds_of(model_def)
        candles = self._as_candles(model, model_def, training_data)
        from_store = candles is not training_data
        source = model_def.get("data_source") or (
            get_backend().data_source_of(candles) if from_store else "unknown"
        )
        return model.train_on(candles, data_source=source, walk_forward_folds=folds, history=history)

    @staticmethod
    def _as_candles(
        model: BaseModel, model_def: Mapping[str, Any], training_data: Mapping[str, pd.DataFrame]
    ) -> Mapping[str, pd.DataFrame]:
        """`training_data` itself when it holds candles; else the stored candles behind its feature frames."""
        feature_frames = {s: f for s, f in training_data.items() if not set(OHLCV) <= set(f.columns)}
        if not feature_frames:
            return training_data
        frames = dict(training_data)
        if not model_def.get("features"):
            columns = list(dict.fromkeys(c for f in feature_frames.values() for c in f.columns))
            model.set_params(features=columns)
        model.feed_scale_free()
        warmup = required_warmup(list(model.features), model.timeframe)
        for symbol, frame in feature_frames.items():
            frames[symbol] = get_backend().candles_for_features(symbol, frame, model.timeframe, warmup)
        return frames

    def save_model(self, name: str, model: BaseModel) -> str:
        """Save through the store (atomic, hashed, recorded); returns the stored model's name."""
        return get_backend().save_model(model, name)
