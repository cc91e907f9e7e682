"""A study's train window is loaded and featurized once per host and shared by its trials: each trial gets
exactly the rows, labels and feature values it computed for itself before, and nothing from the holdout."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from app.ml.dataset import build_dataset
from app.ml.training import model_from_definition
from app.services.tuning import window as window_cache
from app.services.tuning.studies import get_study, start_study
from app.services.tuning.trials import shared_window, train_candles
from tests.tuning.helpers import BAD_START, SPACE, options, seed


def test_trials_share_one_window_that_gives_each_the_rows_it_loaded_itself(store_dir: Path) -> None:
    seed(2.1, ar1=0.3)
    study = get_study(start_study("direction_tuned", trials=3, minutes=5, options=options(),
                                  search_space=SPACE).id)
    window = shared_window(study)
    assert window.names == [*SPACE["features"]]  # the space's candidates (the start's are among them)
    cut = pd.Timestamp(int(study.window["cut_ms"]), unit="ms", tz="UTC")
    assert all(frame.index.max() < cut for frame in window.candles.values())  # never a holdout candle

    for features in (BAD_START["features"], ["returns"], ["bb_width_20", "returns_5", "volume_ratio_20"]):
        definition = {**BAD_START, "features": features}
        model = model_from_definition(definition)
        own = build_dataset(model, train_candles(study, definition))
        shared = build_dataset(model, *window.for_definition(definition))
        assert shared.X.columns.tolist() == features
        assert shared.meta.equals(own.meta) and np.array_equal(shared.y, own.y)
        np.testing.assert_allclose(shared.X.to_numpy(), own.X.to_numpy(), rtol=1e-12, atol=1e-12)

    # another process on this host reads the file; the study's finish removes it
    window_cache._memory.clear()
    again = shared_window(study)
    assert again is not window
    for symbol, frame in window.features.items():
        pd.testing.assert_frame_equal(again.features[symbol], frame)
        pd.testing.assert_frame_equal(again.candles[symbol], window.candles[symbol])
    path = window_cache.cache_dir() / f"{study.id}.npz"
    assert path.exists()
    window_cache.forget(study.id)
    assert not path.exists()
