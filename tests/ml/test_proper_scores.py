"""Proper scores, HAR-RV and intervals on trained models (DESIGN 5)."""

from __future__ import annotations

import pandas as pd
import pytest

from app.data.frames import candles_frame
from app.data.simulator import MarketSimulator
from app.ml import MomentumClassifier, VolatilityRegressor
from tests.ml.synthetic import SMALL

START_MS = 1_704_067_200_000


@pytest.fixture(scope="module")
def clustered() -> dict[str, pd.DataFrame]:
    """3 days of the simulator's market: GARCH volatility clustering and an intraday cycle."""
    frames = MarketSimulator(17).generate(["BTC-USDT", "ETH-USDT"], START_MS, 3 * 1440)
    return {s: candles_frame(f) for s, f in frames.items()}


def test_volatility_is_scored_against_har_rv_with_qlike_beside_rmse(clustered) -> None:
    perf = VolatilityRegressor(**SMALL["volatility"]).train_on(clustered).performance_
    board = perf["baselines"]
    assert set(board) == {"persistence", "train_mean", "har_rv"}
    assert board["har_rv"]["rmse"] < board["train_mean"]["rmse"]  # clustering: HAR-RV is a real rival
    strongest = min(board, key=lambda n: board[n]["rmse"])
    assert perf["baseline"] == strongest and perf["baseline_rmse"] == board[strongest]["rmse"]
    assert perf["qlike"] > 0 and board["har_rv"]["qlike"] > 0 and "qlike" in perf["intervals"]


def test_a_probability_earns_brier_skill_where_the_class_answer_is_always_the_majority(clustered) -> None:
    """Momentum's label is predictable from the size of the last move even on a random walk: the
    answered class is nearly always 'decelerating' (accuracy skill ~0), the probability is informative."""
    perf = MomentumClassifier(**SMALL["momentum"], horizon=1).train_on(clustered).performance_
    assert abs(perf["accuracy_skill"]) < 0.03
    assert perf["skill"] > 0.02 and perf["beats_baseline"] and perf["roc_auc"] > 0.6
    assert perf["baseline"] == "base_rate" and perf["brier"] < perf["baseline_brier"]
    assert perf["brier_skill"] == pytest.approx(perf["skill"])


@pytest.mark.parametrize("kind", ["direction", "risk", "price", "momentum", "volatility"])
def test_every_metric_has_an_interval_around_it_and_an_effective_n(kind, rw_models) -> None:
    perf = rw_models[kind].performance_
    for name, interval in perf["intervals"].items():
        if perf.get(name) is None or interval is None:
            continue
        lo, hi = interval
        assert lo - 1e-9 <= perf[name] <= hi + 1e-9 or name == "roc_auc", (name, perf[name], interval)
    assert perf["skill_interval"] == perf["intervals"]["skill"]
    assert 1 <= perf["n_effective"] <= perf["n_times"] <= perf["n"]
    assert perf["block_bars"] >= rw_models[kind].horizon
    folds = perf["walk_forward"]
    assert folds["k"] == 4 and len(folds["folds"]) == 4 and folds["embargo_bars"] == rw_models[kind].horizon


@pytest.mark.parametrize("kind", ["direction", "risk", "price", "volatility"])
def test_nothing_beats_its_baseline_on_a_random_walk(kind, rw_models) -> None:
    assert not rw_models[kind].performance_["beats_baseline"]
