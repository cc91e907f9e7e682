"""Resampling 1m candles: bins by open time, whole bins only, nothing from the future."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from app.core.errors import BadInput
from app.features import compute_features, resample


def _minutes(rows: list[tuple[float, float, float, float, float]], start: str = "2024-03-01 00:00"):
    index = pd.date_range(start, periods=len(rows), freq="1min", tz="UTC", name="ts").as_unit("ms")
    return pd.DataFrame(rows, columns=["open", "high", "low", "close", "volume"], index=index)


TWELVE = _minutes([
    (10, 12, 9, 11, 1), (11, 15, 10, 14, 2), (14, 14, 8, 9, 3), (9, 10, 9, 10, 4), (10, 11, 10, 10.5, 5),
    (10.5, 11, 10, 10, 6), (10, 20, 10, 19, 7), (19, 19, 5, 6, 8), (6, 7, 6, 7, 9), (7, 8, 7, 8, 10),
    (8, 9, 8, 9, 11), (9, 30, 1, 2, 12),
])


def test_a_5m_bin_is_first_open_max_high_min_low_last_close_summed_volume():
    bars = resample(TWELVE, "5m")
    assert bars.index[0] == pd.Timestamp("2024-03-01 00:00", tz="UTC")
    assert bars.iloc[0].tolist() == [10, 15, 8, 10.5, 15]
    assert bars.iloc[1].tolist() == [10.5, 20, 5, 8, 40]


def test_the_unfinished_last_bin_is_dropped_and_a_finished_one_kept():
    assert list(resample(TWELVE, "5m").index.minute) == [0, 5]  # 00:10 bin has 2 of 5 minutes
    fifteen = pd.concat([TWELVE, _minutes([(2, 3, 2, 3, 1)] * 3, "2024-03-01 00:12")])
    assert list(resample(fifteen, "5m").index.minute) == [0, 5, 10]
    assert resample(TWELVE, "15m").empty


def test_a_bin_with_a_missing_minute_is_kept():
    gappy = TWELVE.drop(TWELVE.index[7])
    bars = resample(gappy, "5m")
    assert bars.iloc[1].tolist() == [10.5, 20, 6, 8, 32]


def test_hour_bins_are_aligned_to_utc_and_labelled_by_open_time():
    index = pd.date_range("2024-03-01 00:37", periods=600, freq="1min", tz="UTC", name="ts").as_unit("ms")
    candles = pd.DataFrame({c: np.arange(600.0) + 1 for c in ["open", "high", "low", "close", "volume"]},
                           index=index)
    hours = resample(candles, "1h")
    assert hours.index[0] == pd.Timestamp("2024-03-01 00:00", tz="UTC")
    assert hours.index[-1] == pd.Timestamp("2024-03-01 09:00", tz="UTC")  # 10:36 is the last minute
    four = resample(candles, "4h")
    assert list(four.index.hour) == [0, 4]
    assert four.loc["2024-03-01 04:00", "open"] == 4 * 60 - 37 + 1


@pytest.mark.parametrize("timeframe", ["5m", "15m", "1h"])
def test_resampled_features_never_change_when_later_minutes_arrive(timeframe: str, make_candles):
    minutes = make_candles(3000, seed=7, start="2024-01-01 21:03")
    names = ["returns", "rsi_14", "macd_histogram_pct", "vwap_dist", "close_zscore_20", "range_pct"]
    final = compute_features(resample(minutes, timeframe), names)
    for cut in (1500, 1502, 2207, 2999):
        early = compute_features(resample(minutes.iloc[:cut], timeframe), names)
        assert early.index[-1] + pd.Timedelta(timeframe) <= minutes.index[cut - 1] + pd.Timedelta("1min")
        pd.testing.assert_frame_equal(early, final.loc[early.index])


def test_unknown_timeframe_is_rejected_with_the_known_ones():
    with pytest.raises(BadInput, match="5m.*15m.*1h"):
        resample(TWELVE, "7m")
