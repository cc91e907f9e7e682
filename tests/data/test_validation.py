import numpy as np
import pandas as pd
import pytest

from app.core.errors import BadInput
from app.data.gaps import Gap, find_gaps
from app.data.validation import validate_candles

T0 = 1_704_067_200_000
BAR = 60_000


def _good(n: int = 5) -> pd.DataFrame:
    return pd.DataFrame({
        "ts": [T0 + i * BAR for i in range(n)],
        "open": 100.0, "high": 101.0, "low": 99.0, "close": 100.5, "volume": 2.0,
    })


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"close": np.nan}, "nan"),
        ({"volume": np.inf}, "nan"),
        ({"low": 0.0}, "non_positive_price"),
        ({"open": -1.0}, "non_positive_price"),
        ({"high": 100.2}, "high_below_open_close"),  # below the close 100.5
        ({"low": 100.2}, "low_above_open_close"),  # above the open 100
        ({"volume": -0.1}, "negative_volume"),
        ({"ts": T0 + 2 * BAR + 1_000}, "unaligned_ts"),
        ({"ts": T0 + 1 * BAR}, "duplicate_ts"),
    ],
)
def test_each_kind_of_bad_row_is_rejected_with_its_reason_while_the_rest_lands(change, reason):
    frame = _good()
    for column, value in change.items():
        frame[column] = frame[column].astype("float64")
        frame.loc[2, column] = value
    result = validate_candles(frame)
    assert result.counts_by_reason() == {reason: 1}
    assert [r.reason for r in result.rejected] == [reason]
    assert len(result.good) == 4
    assert result.good["ts"].is_monotonic_increasing and result.good["ts"].dtype == "int64"


def test_a_flat_candle_with_zero_volume_is_a_trading_halt_not_an_error():
    frame = _good(3)
    frame.loc[1, ["open", "high", "low", "close", "volume"]] = [100.0, 100.0, 100.0, 100.0, 0.0]
    result = validate_candles(frame)
    assert result.rejected == [] and len(result.good) == 3


def test_a_row_gets_the_first_reason_and_a_duplicate_of_a_bad_row_is_kept():
    frame = _good(3)
    frame["close"] = frame["close"].astype("float64")
    frame.loc[0, "close"] = np.nan
    frame.loc[1, "ts"] = T0  # same time as the bad row 0: the valid copy is kept
    frame.loc[2, ["low", "volume"]] = [120.0, -5.0]  # low above and negative volume: first reason wins
    result = validate_candles(frame)
    rejected = [(r.ts, r.reason) for r in result.rejected]
    assert rejected == [(T0, "nan"), (T0 + 2 * BAR, "low_above_open_close")]
    assert result.good["ts"].tolist() == [T0]


def test_rows_are_sorted_and_the_rejection_keeps_the_original_row():
    frame = _good(4).iloc[::-1].reset_index(drop=True)
    frame.loc[0, "volume"] = -1.0
    result = validate_candles(frame)
    assert result.good["ts"].tolist() == [T0, T0 + BAR, T0 + 2 * BAR]
    assert result.rejected[0].row["volume"] == -1.0


def test_missing_columns_are_a_bad_input_naming_them():
    with pytest.raises(BadInput, match="missing: volume"):
        validate_candles(_good().drop(columns=["volume"]))


def test_gaps_are_runs_of_missing_candles_between_present_ones():
    ts = [T0, T0 + BAR, T0 + 4 * BAR, T0 + 5 * BAR, T0 + 7 * BAR]
    assert find_gaps(ts, "1m") == [
        Gap(start_ts=T0 + 2 * BAR, end_ts=T0 + 3 * BAR, missing_bars=2),
        Gap(start_ts=T0 + 6 * BAR, end_ts=T0 + 6 * BAR, missing_bars=1),
    ]
    assert find_gaps(np.array(ts[:2]), "1m") == []
    assert find_gaps([T0, T0 + 3_600_000], "1h") == []
