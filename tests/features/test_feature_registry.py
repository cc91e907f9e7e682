"""Feature names carry their parameters; unknown names are rejected with the known forms."""

from __future__ import annotations

import pytest

from app.core.errors import BadInput
from app.features import FEATURES, compute_features, get_feature, is_scale_free, pattern_names


def test_parameters_are_read_from_the_name(make_candles):
    candles = make_candles(300, seed=8)
    values = compute_features(candles, ["rsi_7", "rsi_21", "returns_3"])
    assert values["rsi_7"].first_valid_index() == candles.index[7]
    assert values["rsi_21"].first_valid_index() == candles.index[21]
    expected = candles["close"].iloc[10] / candles["close"].iloc[7] - 1
    assert values["returns_3"].iloc[10] == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("name", ["rsi", "rsi_x", "foo", "rsi_14 ", "RSI_14", "rsi_0", "sma_1", "ema_99999"])
def test_unknown_or_malformed_names_list_the_known_forms(name: str):
    with pytest.raises(BadInput) as caught:
        get_feature(name)
    for form in ("rsi_<n>", "macd_histogram", "vwap", "returns"):
        assert form in caught.value.message


def test_compute_features_rejects_an_unknown_name_before_computing(make_candles):
    with pytest.raises(BadInput, match="known features"):
        compute_features(make_candles(50), ["returns", "nope"])


def test_feature_catalogue_answers_membership_for_any_parameter():
    assert "rsi_14" in FEATURES and "rsi_33" in FEATURES and "rsi" not in FEATURES
    assert FEATURES["adx_14"].warmup_bars > 100
    assert "rsi_14" in list(FEATURES) and len(FEATURES) == len(list(FEATURES))
    assert set(pattern_names()) >= {"atr_<n>", "volume_sma_<n>", "macd_signal"}


@pytest.mark.parametrize(
    ("name", "scale_free"),
    [("returns", True), ("rsi_14", True), ("natr_14", True), ("vwap_dist", True), ("volume_ratio_20", True),
     ("close", False), ("vwap", False), ("atr_14", False), ("volume_sma_20", False), ("ema_20", False),
     ("macd_histogram", False), ("macd_histogram_pct", True)],
)
def test_price_and_volume_unit_features_are_not_scale_free(name: str, scale_free: bool):
    assert is_scale_free(name) is scale_free


def test_frames_without_ohlcv_or_a_time_index_are_rejected(make_candles):
    candles = make_candles(30)
    with pytest.raises(BadInput, match="volume"):
        compute_features(candles.drop(columns="volume"), ["returns"])
    with pytest.raises(BadInput, match="DatetimeIndex"):
        compute_features(candles.reset_index(drop=True), ["returns"])
    with pytest.raises(BadInput, match="sorted"):
        compute_features(candles.iloc[::-1], ["returns"])


@pytest.mark.parametrize("rows", [0, 1, 3])
def test_frames_shorter_than_any_period_give_nan_rows_not_errors(rows: int, make_candles):
    values = compute_features(make_candles(5).iloc[:rows], list(FEATURES))
    assert values.shape == (rows, len(FEATURES))
    assert values["rsi_14"].isna().all()
