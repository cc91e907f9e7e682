"""Fixtures of the fault suite: real models trained once, and a fresh store per test."""

from __future__ import annotations

import pytest

from tests.api.ml_setup import Trained, train_models


@pytest.fixture(autouse=True)
def _fresh_model_cache():  # noqa: ANN202
    """Servers started here load models into the process's cache; later tests must not see them."""
    from app.store.cache import reset_cache

    reset_cache()
    yield
    reset_cache()


@pytest.fixture(scope="session")
def trained() -> Trained:
    """Small real models (two direction, a risk and a price model) trained once for the fault suite."""
    return train_models()


@pytest.fixture(params=["server_db", "sqlite"])
def database(request: pytest.FixtureRequest, tmp_path, monkeypatch: pytest.MonkeyPatch):  # noqa: ANN001, ANN201
    """Run a test on the suite's database (Postgres when it answers) and again on a fresh SQLite file."""
    from app.core.config import get_settings, reset_settings

    if request.param == "server_db":
        yield get_settings().resolved_database_url
        return
    from tests.conftest import _create_schema

    url = f"sqlite:///{tmp_path / 'faults.db'}"
    monkeypatch.setenv("DATABASE_URL", url)
    reset_settings()
    _create_schema(url)
    yield url
    reset_settings()
