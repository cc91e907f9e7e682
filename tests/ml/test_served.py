"""A replay's record pooled over periods: against each baseline, and against the one strongest over the
whole record rather than the strongest of each period (app.ml.served)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from app.ml.dataset import Dataset
from app.ml.evaluation import Scored, skill_estimate
from app.ml.served import against_each, pool, strongest

BAR = 60_000


def _period(rng: np.random.Generator, start_ms: int, n: int = 240) -> Scored:
    """A forecaster that answers exactly the random walk (0) on returns of mean 0, beside a train-mean
    baseline whose mean is an estimate, a little off 0 in each period."""
    y = rng.normal(0.0, 1.0, n)
    meta = pd.DataFrame({"symbol": np.where(np.arange(n) % 2, "ETH", "BTC"),
                         "ts_ms": start_ms + np.arange(n) * BAR})
    forecasts = {"random_walk": np.zeros(n), "train_mean": np.full(n, rng.normal(0.0, 0.1))}
    baseline_losses = {b: (y - f) ** 2 for b, f in forecasts.items()}
    best = min(baseline_losses, key=lambda b: float(baseline_losses[b].mean()))
    return Scored(Dataset(pd.DataFrame(index=range(n)), y, meta), np.zeros(n), None, None, forecasts, y**2,
                  baseline_losses, best, True)


def test_a_forecaster_equal_to_a_baseline_is_level_with_the_strongest_over_the_record_not_below_it() -> None:
    rng = np.random.default_rng(7)
    parts = [_period(rng, i * 240 * BAR) for i in range(60)]

    per_period = pool("price", [p.rows("price", 1, BAR) for p in parts])
    assert per_period is not None and per_period.skill < 0  # the bar raised by each period's noise

    pooled = against_each("price", [(p, 1, BAR) for p in parts])
    assert set(pooled) == {"random_walk", "train_mean"}
    assert strongest(pooled) == "random_walk"
    estimate = skill_estimate(pooled["random_walk"])
    assert estimate.skill == 0.0 and estimate.interval[0] <= 0.0 <= estimate.interval[1]
    assert pooled["train_mean"].skill > 0  # the estimated mean only adds error
    assert len(pooled["random_walk"]) == sum(len(p.loss) for p in parts)


def test_only_the_baselines_every_period_has_are_pooled() -> None:
    rng = np.random.default_rng(1)
    first, second = _period(rng, 0), _period(rng, 240 * BAR)
    del second.baseline_losses["train_mean"]
    assert set(against_each("price", [(first, 1, BAR), (second, 1, BAR)])) == {"random_walk"}
    assert against_each("price", []) == {}
