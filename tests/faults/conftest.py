"""Fixtures of the fault suite: real models trained once, and a fresh store per test."""

from __future__ import annotations

import pytest

from tests.api.ml_setup import Trained, train_models


@pytest.fixture(scope="session")
def trained() -> Trained:
    """Small real models (two direction, a risk and a price model) trained once for the fault suite."""
    return train_models()
