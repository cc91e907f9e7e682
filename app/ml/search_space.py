"""Search spaces of the tuner (DESIGN 10): which hyperparameters a study may move, within which ranges, and
which catalogue features it may choose among. Pure: a space is plain data, checked against the kind.

A space per model type (`xgboost`, `random_forest`, `torch`, `svm`, `gradient_boosting`), as written under
`search_spaces:` in `config/models.yaml` (each part there replaces the default below of the same name):

    params:                      # hyperparameter -> range
      max_depth: {low: 2, high: 8}                     # whole numbers: an int range (optional `step`)
      learning_rate: {low: 0.01, high: 0.3, log: true}  # floats: a float range (optional `log`)
      hidden_layers: {choices: [[16], [32, 16]]}       # any values: one of them
    features: [returns, rsi_14, ...]  # the candidates; default: the kind's defaults + scale-free catalogue
    min_features: 2              # a trial keeps at least this many (topped up from the current ones)

`sample(space, trial, current)` draws one definition through an Optuna-like `trial` (anything with
`suggest_int`, `suggest_float`, `suggest_categorical`: this module imports no Optuna), and
`as_trial_params(space, definition)` is the same definition written as trial parameters, so the study's
first trial is the current definition (`enqueue_trial`).
"""

from __future__ import annotations

import json
import numbers
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from app.core.errors import BadInput
from app.features import is_scale_free
from app.features.registry import CATALOGUE, get_feature
from app.ml.registry import model_class_for

FEATURE_PREFIX = "use:"
_NO_TIME_OF_DAY = ("hour_sin", "hour_cos")  # trees memorise the hour of one crash (docs/DECISIONS.md)

DEFAULT_PARAMS: dict[str, dict[str, dict[str, Any]]] = {
    "direction": {"n_estimators": {"low": 20, "high": 300, "step": 10}, "max_depth": {"low": 2, "high": 8},
                  "learning_rate": {"low": 0.01, "high": 0.3, "log": True},
                  "subsample": {"low": 0.5, "high": 1.0}},
    "risk": {"n_estimators": {"low": 20, "high": 200, "step": 10}, "max_depth": {"low": 3, "high": 14},
             "min_samples_leaf": {"low": 1, "high": 50, "log": True},
             "max_features": {"low": 0.2, "high": 1.0}},
    "price": {"hidden_layers": {"choices": [[16], [32], [64, 32], [32, 16]]},
              "epochs": {"low": 5, "high": 30}, "learning_rate": {"low": 1e-4, "high": 1e-2, "log": True},
              "weight_decay": {"low": 1e-5, "high": 1e-2, "log": True}},
    "momentum": {"C": {"low": 0.01, "high": 10.0, "log": True},
                 "n_components": {"low": 50, "high": 400, "step": 50}},
    "volatility": {"max_iter": {"low": 30, "high": 300, "step": 10},
                   "learning_rate": {"low": 0.01, "high": 0.3, "log": True},
                   "max_leaf_nodes": {"low": 7, "high": 63}, "min_samples_leaf": {"low": 20, "high": 400}},
}
DEFAULT_MIN_FEATURES = 2


class Suggests(Protocol):
    """What `sample` needs of a trial (Optuna's `Trial` has it)."""

    def suggest_int(self, name: str, low: int, high: int, *, step: int = 1, log: bool = False) -> int: ...
    def suggest_float(self, name: str, low: float, high: float, *, log: bool = False) -> float: ...
    def suggest_categorical(self, name: str, choices: Any) -> Any: ...


@dataclass(frozen=True)
class Range:
    name: str
    low: float | None = None
    high: float | None = None
    step: int | None = None
    log: bool = False
    choices: tuple[Any, ...] | None = None

    @property
    def is_int(self) -> bool:
        return self.choices is None and isinstance(self.low, int) and isinstance(self.high, int)

    def as_dict(self) -> dict[str, Any]:
        if self.choices is not None:
            return {"choices": list(self.choices)}
        out: dict[str, Any] = {"low": self.low, "high": self.high}
        if self.step is not None:
            out["step"] = self.step
        if self.log:
            out["log"] = True
        return out


@dataclass(frozen=True)
class SearchSpace:
    kind: str
    params: tuple[Range, ...]
    features: tuple[str, ...]
    min_features: int = DEFAULT_MIN_FEATURES
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "params": {r.name: r.as_dict() for r in self.params},
                "features": list(self.features), "min_features": self.min_features}


def default_features(kind: str) -> list[str]:
    """The kind's default features, then every scale-free catalogue feature (no time of day)."""
    cls = model_class_for(kind)
    names = [*cls.default_features, *(f for f in CATALOGUE if is_scale_free(f) and f not in _NO_TIME_OF_DAY)]
    return list(dict.fromkeys(names))


def _range(where: str, name: str, spec: Any) -> Range:
    if not isinstance(spec, Mapping):
        raise BadInput(f"{where}: parameter {name!r} must be a mapping {{low, high}} or {{choices: [...]}}")
    unknown = sorted(set(spec) - {"low", "high", "step", "log", "choices"})
    if unknown:
        raise BadInput(f"{where}: parameter {name!r} has unknown keys {unknown}; use low, high, step, log, "
                       "choices")
    if "choices" in spec:
        choices = spec["choices"]
        if not isinstance(choices, list) or not choices:
            raise BadInput(f"{where}: parameter {name!r}: choices must be a non-empty list")
        return Range(name, choices=tuple(choices))
    low, high = spec.get("low"), spec.get("high")
    for label, value in (("low", low), ("high", high)):
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise BadInput(f"{where}: parameter {name!r}: {label} must be a number, got {value!r}")
    if low > high:
        raise BadInput(f"{where}: parameter {name!r}: low ({low}) is above high ({high})")
    log = bool(spec.get("log", False))
    if log and low <= 0:
        raise BadInput(f"{where}: parameter {name!r}: a log range needs low > 0, got {low}")
    step = spec.get("step")
    if step is not None and (isinstance(step, bool) or not isinstance(step, int) or step < 1):
        raise BadInput(f"{where}: parameter {name!r}: step must be a whole number >= 1, got {step!r}")
    if step is not None and log:
        raise BadInput(f"{where}: parameter {name!r}: step and log cannot be combined")
    if isinstance(low, int) and isinstance(high, int):
        return Range(name, int(low), int(high), step=step, log=log)
    if step is not None:
        raise BadInput(f"{where}: parameter {name!r}: step needs whole-number low and high")
    return Range(name, float(low), float(high), log=log)


def parse_space(kind: str, spec: Mapping[str, Any] | None, where: str = "search space") -> SearchSpace:
    """The checked space of `kind` (a type or kind name): `spec`'s parts over the defaults.

    Refused with a message naming the culprit: a range whose low end is above its high end, a parameter
    the kind does not have, a feature that is unknown or not scale-free, too few features."""
    cls = model_class_for(kind)
    spec = dict(spec or {})
    unknown = sorted(set(spec) - {"params", "features", "min_features"})
    if unknown:
        raise BadInput(f"{where}: unknown keys {unknown}; a search space has params, features, min_features")
    params_spec = spec.get("params", DEFAULT_PARAMS[cls.kind])
    if not isinstance(params_spec, Mapping):
        raise BadInput(f"{where}: params must be a mapping of parameter -> range")
    allowed = set(cls._get_param_names()) - {"features", "horizon", "timeframe", "seed", "train_ratio",
                                             "calibration_ratio"}
    wrong = sorted(set(params_spec) - allowed)
    if wrong:
        names = ", ".join(map(repr, wrong))
        raise BadInput(f"{where}: {cls.__name__} ({cls.kind}) has no parameter {names}; it takes "
                       f"{sorted(allowed)}")
    ranges = tuple(_range(where, str(n), s) for n, s in params_spec.items())
    features = spec.get("features", default_features(cls.kind))
    if not isinstance(features, list) or not all(isinstance(f, str) for f in features):
        raise BadInput(f"{where}: features must be a list of feature names")
    for name in features:
        try:
            get_feature(name)
        except BadInput as exc:
            raise BadInput(f"{where}: {exc.message}") from None
        if not is_scale_free(name):
            raise BadInput(f"{where}: feature {name!r} is not scale-free (models take only scale-free ones)")
    min_features = spec.get("min_features", DEFAULT_MIN_FEATURES)
    if isinstance(min_features, bool) or not isinstance(min_features, int) or min_features < 1:
        raise BadInput(f"{where}: min_features must be a whole number >= 1, got {min_features!r}")
    features = list(dict.fromkeys(features))
    if len(features) < min_features:
        raise BadInput(f"{where}: {len(features)} candidate features are fewer than min_features "
                       f"({min_features})")
    return SearchSpace(cls.kind, ranges, tuple(features), min_features)


def with_current(space: SearchSpace, definition: Mapping[str, Any]) -> SearchSpace:
    """The space widened to hold the current definition (its features among the candidates, its values
    inside the ranges), so the enqueued first trial is a point of the space."""
    features = tuple(dict.fromkeys([*space.features, *(definition.get("features") or [])]))
    config = dict(definition.get("config") or {})
    ranges = []
    for r in space.params:
        value = config.get(r.name)
        if value is None:
            ranges.append(r)
        elif r.choices is not None:
            ranges.append(r if value in r.choices else Range(r.name, choices=(*r.choices, value)))
        elif isinstance(value, numbers.Real) and not isinstance(value, bool):
            low, high = min(r.low, value), max(r.high, value)  # type: ignore[type-var]
            if r.is_int and not float(value).is_integer():
                ranges.append(Range(r.name, float(low), float(high), log=r.log))
            else:
                cast = int if r.is_int else float
                step = r.step if r.step and (int(value) - int(low)) % r.step == 0 and (
                    int(high) - int(low)) % r.step == 0 else None
                ranges.append(Range(r.name, cast(low), cast(high), step=step, log=r.log))
        else:
            ranges.append(r)
    return SearchSpace(space.kind, tuple(ranges), features, space.min_features)


def _choice_key(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


def sample(space: SearchSpace, trial: Suggests, definition: Mapping[str, Any]) -> dict[str, Any]:
    """One definition of the space: `definition` with the trial's hyperparameters and feature subset."""
    config = dict(definition.get("config") or {})
    for r in space.params:
        if r.choices is not None:
            keys = [_choice_key(c) for c in r.choices]
            config[r.name] = json.loads(trial.suggest_categorical(r.name, keys))
        elif r.is_int:
            config[r.name] = trial.suggest_int(r.name, int(r.low), int(r.high), step=r.step or 1,  # type: ignore[arg-type]
                                               log=r.log)
        else:
            config[r.name] = trial.suggest_float(r.name, float(r.low), float(r.high), log=r.log)  # type: ignore[arg-type]
    chosen = [f for f in space.features if trial.suggest_categorical(FEATURE_PREFIX + f, [True, False])]
    if len(chosen) < space.min_features:  # topped up: the current features first, then in the space's order
        current = [f for f in definition.get("features") or [] if f in space.features]
        for name in [*current, *space.features]:
            if len(chosen) >= space.min_features:
                break
            if name not in chosen:
                chosen.append(name)
    return {**definition, "config": config, "features": chosen}


def as_trial_params(space: SearchSpace, definition: Mapping[str, Any]) -> dict[str, Any]:
    """`definition` as the trial parameters `sample` would draw for it (for `enqueue_trial`)."""
    config = dict(definition.get("config") or {})
    current = set(definition.get("features") or [])
    params: dict[str, Any] = {}
    for r in space.params:
        if r.name in config:
            params[r.name] = _choice_key(config[r.name]) if r.choices is not None else config[r.name]
    for f in space.features:
        params[FEATURE_PREFIX + f] = f in current
    return params


def definition_from_params(space: SearchSpace, definition: Mapping[str, Any], params: Mapping[str, Any]
                           ) -> dict[str, Any]:
    """The definition a finished trial's parameters stand for (the inverse of `as_trial_params`)."""
    config = dict(definition.get("config") or {})
    for r in space.params:
        if r.name in params:
            config[r.name] = json.loads(params[r.name]) if r.choices is not None else params[r.name]
    features = [f for f in space.features if params.get(FEATURE_PREFIX + f)]
    return {**definition, "config": config, "features": features}
