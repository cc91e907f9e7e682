"""The model definitions of a cycle: `config/models.yaml` (operators edit it) or a cycle's inline list."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from app.core.config import get_settings
from app.core.errors import BadInput

DEFAULT_FILE = Path(__file__).resolve().parents[3] / "config" / "models.yaml"
DEFAULT_WINDOW_DAYS = 7.0
REQUIRED = ("type", "name")


def models_file(options: dict[str, Any] | None = None) -> Path:
    """Where the definitions come from: the cycle's option, the settings (when present), else the repo's."""
    chosen = (options or {}).get("models_file") or get_settings().cycle_models_file
    return Path(chosen) if chosen else DEFAULT_FILE


def _read(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise BadInput(
            f"model definitions file {path} does not exist; create it (see config/models.yaml)"
        ) from None
    except yaml.YAMLError as exc:
        raise BadInput(f"model definitions file {path} is not valid YAML: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("models_to_train"), list):
        raise BadInput(f"{path} must hold a `models_to_train:` list of model definitions")
    return data


def _check(definitions: list[Any], source: str) -> list[dict[str, Any]]:
    if not definitions:
        raise BadInput(f"{source}: no model definitions; add at least one under models_to_train")
    seen: set[str] = set()
    out = []
    for i, item in enumerate(definitions):
        if not isinstance(item, dict):
            raise BadInput(f"{source}: definition #{i + 1} must be a mapping with type, name, config, ...")
        missing = [key for key in REQUIRED if not item.get(key)]
        if missing:
            raise BadInput(f"{source}: definition #{i + 1} lacks {', '.join(missing)}")
        name = str(item["name"])
        if name in seen:
            raise BadInput(f"{source}: two definitions are named {name!r}; names must be unique")
        if not isinstance(item.get("config", {}), dict):
            raise BadInput(f"{source}: definition {name!r}: config must be a mapping of hyperparameters")
        days = item.get("window_days")
        if days is not None and (isinstance(days, bool) or not isinstance(days, int | float) or days <= 0):
            raise BadInput(f"{source}: definition {name!r}: window_days must be a positive number of days")
        seen.add(name)
        out.append({"config": {}, **item, "name": name})
    return out


def load_definitions(options: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """The cycle's definitions, checked: unique names, each with a type and a name."""
    options = options or {}
    if options.get("definitions") is not None:
        return _check(list(options["definitions"]), "the cycle's definitions")
    path = models_file(options)
    return _check(_read(path)["models_to_train"], str(path))


def check_buildable(definitions: list[dict[str, Any]]) -> None:
    """Construct each definition's model (unfitted): an unknown type or hyperparameter fails up front."""
    from app.ml.training import model_from_definition

    for definition in definitions:
        try:
            model_from_definition(definition)
        except BadInput as exc:
            raise BadInput(f"model definition {definition['name']!r}: {exc.message}") from None


def window_days(options: dict[str, Any] | None = None) -> float:
    """The rolling window: the cycle's option, else the file's `defaults.window_days`, else 7."""
    options = options or {}
    if options.get("window_days") is not None:
        value = float(options["window_days"])
    elif options.get("definitions") is None and models_file(options).exists():
        value = float(
            (_read(models_file(options)).get("defaults") or {}).get("window_days", DEFAULT_WINDOW_DAYS)
        )
    else:
        value = DEFAULT_WINDOW_DAYS
    if value <= 0:
        raise BadInput(f"window_days must be positive, got {value}")
    return value


def definition_window(window: dict[str, Any], definition: dict[str, Any]) -> tuple[int, int]:
    """The [start, end] (ms) a definition trains on: its own `window_days` back from the cycle's window
    end when it sets one (definitions with different windows then compete in ranking), else the cycle's."""
    days = definition.get("window_days")
    if days is None:
        return int(window["start_ms"]), int(window["end_ms"])
    return int(window["end_ms"] - float(days) * 86_400_000) + 60_000, int(window["end_ms"])


def search_spaces(options: dict[str, Any] | None = None) -> dict[str, Any]:
    """The file's `search_spaces:` (model type -> space spec, DESIGN 10); {} when it declares none."""
    options = options or {}
    path = models_file(options)
    if not path.exists():
        return {}
    spaces = _read(path).get("search_spaces") or {}
    if not isinstance(spaces, dict):
        raise BadInput(f"{path}: search_spaces must map a model type to its search space")
    return spaces


def search_space_for(model_type: str, override: dict[str, Any] | None = None,
                     options: dict[str, Any] | None = None) -> Any:
    """The checked search space of a model type: `override` (a request's), else the file's, else defaults.

    An invalid space raises BadInput naming the parameter, range or feature (a 422 at the API)."""
    from app.ml.search_space import parse_space

    if override is not None:
        return parse_space(model_type, override, "the request's search_space")
    path = models_file(options)
    spaces = search_spaces(options)
    spec = spaces.get(model_type)
    if spec is None:  # also accept the kind's name (direction, risk, ...)
        from app.ml.registry import model_class_for

        kind = model_class_for(model_type).kind
        spec = next((s for t, s in spaces.items() if _kind_of(t) == kind), None)
    return parse_space(model_type, spec, f"{path}: search_spaces.{model_type}")


def _kind_of(model_type: str) -> str | None:
    from app.ml.registry import model_class_for

    try:
        return model_class_for(model_type).kind
    except BadInput:
        return None


def check_search_spaces(options: dict[str, Any] | None = None) -> None:
    """Every declared search space parses (a broken one fails `mlpipe tune` / POST /tuning with its name)."""
    from app.ml.search_space import parse_space

    path = models_file(options)
    for model_type, spec in search_spaces(options).items():
        parse_space(str(model_type), spec, f"{path}: search_spaces.{model_type}")
