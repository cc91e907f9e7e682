"""Honesty audit: no label, reference or live window may reach into rows a model is scored on."""

from __future__ import annotations

import numpy as np
import pytest

from app.core.errors import BadInput
from app.data.frames import index_ms
from app.ml.dataset import build_dataset
from app.ml.ensembles import EnsemblePredictor
from app.ml.kinds import DirectionPredictor
from app.ml.splits import chronological_split
from app.services.cycle.drift import seen_until_ms
from tests.ml.synthetic import SMALL, make_candles, market

BAR = 60_000


def test_no_train_label_reaches_the_holdout_across_a_gap_in_the_candles() -> None:
    """A gap (exchange outage, empty bin) makes `h rows later` more than h bars later in time: the
    time-based embargo must still keep every train label's last bar before the holdout."""
    model = DirectionPredictor(horizon=5)
    candles = make_candles(3000, seed=3)
    cut = chronological_split(build_dataset(model, {"X": candles}).ts_ms, 5, BAR).cut_ms
    stamps = index_ms(candles.index)
    gapped = candles[(stamps < cut - 20 * BAR) | (stamps >= cut)]  # 20 bars missing just before the cut

    ds = build_dataset(model, {"X": gapped})
    split = chronological_split(ds.ts_ms, model.horizon, model.bar_ms)
    gapped_ms = index_ms(gapped.index)
    label_end = gapped_ms[np.searchsorted(gapped_ms, ds.ts_ms[split.train]) + model.horizon]
    assert split.cut_ms == cut
    assert label_end.max() < split.cut_ms


def test_rows_whose_label_window_spans_a_gap_carry_no_label() -> None:
    model = DirectionPredictor(horizon=3)
    candles = make_candles(1500, seed=4)
    gapped = candles.drop(candles.index[1200:1210])
    ds = build_dataset(model, {"X": gapped})
    gapped_ms = index_ms(gapped.index)
    pos = np.searchsorted(gapped_ms, ds.ts_ms)
    assert np.all(gapped_ms[pos + model.horizon] - ds.ts_ms == model.horizon * BAR)


def test_drift_live_window_of_a_directly_trained_model_starts_after_its_whole_window() -> None:
    """Drift scores the 'newest hours not used in training': for a model trained with `train_on` (API,
    CLI) that must begin after every candle of its window, not at its last train row, whose label (and
    the purged rows after it) reach h bars further."""
    candles = market(1.5, seed=11)
    model = DirectionPredictor(horizon=5, **SMALL["direction"]).train_on(candles)
    last_candle = max(int(index_ms(c.index).max()) for c in candles.values())
    assert seen_until_ms(model.training_, model.bar_ms) >= last_candle


class _Member:
    kind = "direction"
    horizon = 5
    bar_ms = BAR

    def __init__(self, train_end_ms: int) -> None:
        self.training_ = {"train_end_ms": train_end_ms}


def test_stacking_refuses_rows_whose_labels_overlap_a_members_last_training_label() -> None:
    end = 1_000 * BAR
    ens = EnsemblePredictor([_Member(end), _Member(end)], method="stacking")
    rng = np.random.default_rng(0)
    signals, y = rng.uniform(size=(50, 2)), rng.integers(0, 2, 50)
    within_horizon = end + BAR * np.arange(1, 51)  # the first 5 rows share label bars with train row `end`
    with pytest.raises(BadInput, match="training data"):
        ens.fit_stacking(signals, y, row_times_ms=within_horizon)
    ens.fit_stacking(signals, y, row_times_ms=within_horizon + 5 * BAR)
    assert ens.meta is not None
