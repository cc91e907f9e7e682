"""Every real model kind survives save -> load unchanged, and is refused once its files are tampered with."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from app.core.errors import IntegrityError
from app.data.frames import candles_frame
from app.data.simulator import MarketSimulator
from app.ml.dataset import build_dataset
from app.ml.training import TrainingPipeline
from app.services.models import get_model, load_model, save_model

START_TS = 1_767_225_600_000  # 2026-01-01 UTC
SMALL = {  # small estimators: these tests are about the store, not about skill
    "direction": {"n_estimators": 15, "max_depth": 3},
    "risk": {"n_estimators": 10, "max_depth": 4},
    "price": {"epochs": 2, "hidden_layers": [16]},
    "momentum": {"n_components": 50},
    "volatility": {"max_iter": 20},
}


@pytest.fixture(scope="module")
def candles() -> dict[str, pd.DataFrame]:
    raw = MarketSimulator(11).generate(["BTC-USDT", "ETH-USDT"], START_TS, 1500)
    return {symbol: candles_frame(frame) for symbol, frame in raw.items()}


@pytest.fixture(scope="module")
def trained(candles: dict[str, pd.DataFrame]) -> dict[str, Any]:
    pipeline = TrainingPipeline()
    return {kind: pipeline.train_model({"kind": kind, "config": config, "data_source": "simulated"}, candles)
            for kind, config in SMALL.items()}


@pytest.mark.parametrize("kind", list(SMALL))
def test_round_trip_gives_identical_predictions_and_answers(
    kind: str, trained: dict[str, Any], candles: dict[str, pd.DataFrame], store_dir: Path
) -> None:
    model = trained[kind]
    record = save_model(model)
    loaded = load_model(record.name)
    assert type(loaded) is type(model) and loaded.feature_names_ == model.feature_names_
    ds = build_dataset(model, candles)
    before, after = model.outputs(ds.X, ds.meta), loaded.outputs(ds.X, ds.meta)
    np.testing.assert_array_equal(after[0], before[0])
    if before[1] is not None:
        np.testing.assert_array_equal(after[1], before[1])
    btc = candles["BTC-USDT"]
    assert loaded.predict(current_features=btc) == model.predict(current_features=btc)
    meta = json.loads((store_dir / record.store_dir / "metadata.json").read_text())
    assert meta["kind"] == kind and meta["type"] == model.model_type
    assert meta["feature_count"] == len(model.feature_names_) > 0
    assert meta["training"]["data_points"] == model.training_["data_points"] > 0
    assert meta["performance"]["skill"] == pytest.approx(model.performance_["skill"])
    assert meta["performance"]["window"] and meta["performance"]["baseline"]["name"]
    assert get_model(record.name).score == pytest.approx(100 * model.performance_["skill"])


@pytest.mark.parametrize("kind", ["direction", "risk", "price"])
def test_tampered_model_file_of_a_real_kind_is_refused(
    kind: str, trained: dict[str, Any], store_dir: Path
) -> None:
    record = save_model(trained[kind])
    artifact = store_dir / record.store_dir / trained[kind].artifact_file
    data = bytearray(artifact.read_bytes())
    data[len(data) // 2] ^= 0x01  # one flipped bit
    artifact.write_bytes(bytes(data))
    with pytest.raises(IntegrityError, match=trained[kind].artifact_file):
        load_model(record.name)


def test_changed_config_is_refused(trained: dict[str, Any], store_dir: Path) -> None:
    record = save_model(trained["direction"])
    config_path = store_dir / record.store_dir / "config.json"
    config = json.loads(config_path.read_text())
    config["features"] = list(reversed(config["features"]))
    config_path.write_text(json.dumps(config))
    with pytest.raises(IntegrityError, match="config.json"):
        load_model(record.name)
