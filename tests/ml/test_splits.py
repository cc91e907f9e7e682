"""Chronological split by time across symbols with a purged embargo of at least the horizon."""

from __future__ import annotations

import numpy as np
import pytest

from app.core.errors import BadInput
from app.ml.splits import calibration_split, chronological_split

BAR = 60_000


def _times(symbols: int = 3, bars: int = 1000, gap_every: int = 0) -> np.ndarray:
    ts = np.arange(bars) * BAR
    if gap_every:
        ts = ts[np.arange(bars) % gap_every != 0]
    return np.sort(np.tile(ts, symbols), kind="stable")


@pytest.mark.parametrize("horizon", [1, 5, 60])
def test_no_train_label_window_reaches_the_holdout(horizon: int) -> None:
    ts = _times(gap_every=7)
    split = chronological_split(ts, horizon, BAR)
    last_label_bar = ts[split.train] + horizon * BAR
    assert last_label_bar.max() < ts[split.holdout].min()
    assert split.embargo_bars >= horizon


def test_embargo_is_never_below_the_horizon() -> None:
    assert chronological_split(_times(), 10, BAR, embargo_bars=3).embargo_bars == 10
    assert chronological_split(_times(), 10, BAR, embargo_bars=30).embargo_bars == 30


def test_every_symbol_is_cut_at_the_same_instant() -> None:
    ts = _times(symbols=3)
    split = chronological_split(ts, 5, BAR, train_ratio=0.8)
    assert np.all(ts[split.holdout] >= split.cut_ms)
    assert np.all(ts[~split.holdout] < split.cut_ms)
    assert split.holdout.sum() % 3 == 0
    assert split.holdout.mean() == pytest.approx(0.2, abs=0.01)


def test_purged_rows_are_exactly_the_embargo_before_the_cut() -> None:
    ts = _times(symbols=1)
    split = chronological_split(ts, 5, BAR)
    purged = ts[split.purged]
    assert purged.min() == split.cut_ms - 5 * BAR
    assert len(purged) == 5


def test_calibration_slice_is_carved_from_the_end_of_train_with_its_own_embargo() -> None:
    ts = _times(symbols=2)
    outer = chronological_split(ts, 5, BAR)
    inner = calibration_split(ts[outer.train], 5, BAR, calibration_ratio=0.2)
    fit_ts, cal_ts = ts[outer.train][inner.train], ts[outer.train][inner.holdout]
    assert fit_ts.max() + 5 * BAR < cal_ts.min()
    assert cal_ts.max() + 5 * BAR < ts[outer.holdout].min()


def test_window_too_short_for_the_embargo_is_refused() -> None:
    with pytest.raises(BadInput, match="too short"):
        chronological_split(_times(bars=50), 60, BAR)
