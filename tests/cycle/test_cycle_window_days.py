"""`defaults.window_days` of the models file reaches the window every model of the cycle trains on."""

from __future__ import annotations

import pandas as pd
import yaml

from app.services.cycle import get_cycle, start_cycle
from app.services.models import list_models
from tests.cycle.helpers import definition, run_workers, seed_candles


def _cycle_with_file(tmp_path, window_days: float | None) -> tuple[dict, dict]:
    content = {"models_to_train": [definition("xgboost", "windowed")]}
    if window_days is not None:
        content["defaults"] = {"window_days": window_days}
    path = tmp_path / f"models_{window_days}.yaml"
    path.write_text(yaml.safe_dump(content))
    cycle = start_cycle("cli", {"models_file": str(path), "ingest": False})
    run_workers()
    done = get_cycle(cycle.id)
    assert done.status == "succeeded", done.errors
    trained = next(r for r in list_models() if (r.training or {}).get("cycle_id") == cycle.id)
    return done.results["window"], trained.training


def test_the_files_window_days_sets_the_trained_window(tmp_path) -> None:
    seed_candles(days=3)
    window, training = _cycle_with_file(tmp_path, 1.5)
    assert window["days"] == 1.5
    span = pd.Timestamp(training["train_end"]) - pd.Timestamp(training["train_start"])
    assert span < pd.Timedelta(days=1.5)  # the train part of 1.5 days, not of the 3 stored
    assert span > pd.Timedelta(days=1.0)

    window, training = _cycle_with_file(tmp_path, None)  # no setting: 7 days, i.e. all 3 stored
    assert window["days"] == 7.0
    assert pd.Timestamp(training["train_end"]) - pd.Timestamp(training["train_start"]) > pd.Timedelta(days=2)


def test_a_cycle_build_loads_the_volatility_profiles_history_before_the_window(tmp_path) -> None:
    """Issue 9: the volatility model's time-of-day profile reads `profile_days` before the window, which
    the build loads (the window alone holds too few days), and is saved with the model."""
    from app.services.models import load_model
    from tests.cycle.helpers import SYMBOLS

    seed_candles(days=6)
    vol = {**definition("gradient_boosting", "vol_profile", profile_days=4),
           "features": ["realized_vol_30", "realized_vol_60", "natr_14", "hour_sin", "hour_cos"]}
    path = tmp_path / "models_vol.yaml"
    path.write_text(yaml.safe_dump({"defaults": {"window_days": 1.5}, "models_to_train": [vol]}))
    cycle = start_cycle("cli", {"models_file": str(path), "ingest": False})
    run_workers()
    done = get_cycle(cycle.id)
    assert done.status == "succeeded", done.errors
    record = next(r for r in list_models() if (r.training or {}).get("cycle_id") == cycle.id)
    model = load_model(record.name)
    # complete UTC days: at most 1 per symbol inside the 1.5-day window; 3 or more with the 4 days before
    assert model.history_profile_ is not None and model.history_profile_["days"] >= 3 * len(SYMBOLS)
