import pytest

from tests.api.ml_setup import Trained, train_models


@pytest.fixture(scope="session")
def trained() -> Trained:
    """Small models trained once for the whole API suite (the per-test database is filled by `save`)."""
    return train_models()
