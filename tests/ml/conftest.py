"""Session data and trained models shared by the ML tests (generators in tests/ml/synthetic.py)."""

from __future__ import annotations

import pandas as pd
import pytest

from tests.ml.synthetic import SMALL, market


@pytest.fixture(scope="session")
def random_walk() -> dict[str, pd.DataFrame]:
    """3 symbols x 3 days of 1m candles, i.i.d. fat-tailed returns: nothing to learn."""
    return market(3, seed=100)


@pytest.fixture(scope="session")
def rw_models(random_walk: dict[str, pd.DataFrame]) -> dict:
    """One model of each kind trained (train part only) and validated (holdout) on the random walk."""
    from app.ml import MODEL_KINDS

    return {kind: cls(**SMALL[kind]).train_on(random_walk, data_source="simulated")
            for kind, cls in MODEL_KINDS.items()}


@pytest.fixture(scope="session")
def planted() -> dict[str, pd.DataFrame]:
    """3 symbols x 3 days with AR(1) returns, phi = -0.3: the last 1-bar return predicts the next one.

    phi = +0.3 would do too, but there "last move repeated" is already the best possible forecast of the
    next bar, so no model could show skill over it; with phi < 0 the naive baselines cannot use the
    signal while a model reading `returns` can.
    """
    return market(3, seed=300, phi=-0.3)


@pytest.fixture(scope="session")
def planted_direction(planted: dict[str, pd.DataFrame]):
    from app.ml import DirectionPredictor

    return DirectionPredictor(n_estimators=50, max_depth=3, horizon=1).train_on(planted)
