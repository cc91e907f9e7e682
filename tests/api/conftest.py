from collections.abc import Iterator

import pytest

from app.store.cache import reset_cache
from tests.api.ml_setup import Trained, train_models
from tests.api.server import serve


@pytest.fixture(scope="session")
def trained() -> Trained:
    """Small models trained once for the whole API suite (the per-test database is filled by `save`)."""
    return train_models()


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    """The real app under uvicorn on a free loopback port, with an empty model cache, for one module."""
    reset_cache()
    with serve() as url:
        yield url
    reset_cache()
