"""What the seed-style calls need from outside `app.ml`: stored candles by symbol, and the model store.

`app.ml` is pure (no database, Redis or web code). The seed's convenience calls (`model.train(symbols=...)`,
`model.predict(symbol=...)`, `model.backtest(...)`, `TrainingPipeline.save_model`, `load_model`) go through
a registered `Backend`. The services layer provides the store-backed one (`app.services.market_data`),
imported on first use when none was registered; tests or notebooks may `set_backend` their own.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Mapping
from typing import Any, Protocol

import pandas as pd

DEFAULT_BACKEND_MODULE = "app.services.market_data"


class Backend(Protocol):
    def latest_candles(self, symbol: str, timeframe: str, bars: int) -> pd.DataFrame: ...

    def load_window(self, symbols: Iterable[str], timeframe: str, bars: int) -> dict[str, pd.DataFrame]: ...

    def candles_for_features(
        self, symbol: str, features: pd.DataFrame, timeframe: str, warmup: int
    ) -> pd.DataFrame: ...

    def market_candles(
        self, symbols: list[str], timeframe: str, start_ms: int, end_ms: int
    ) -> dict[str, pd.DataFrame]: ...

    def data_source_of(self, candles_by_symbol: Mapping[str, pd.DataFrame]) -> str: ...

    def save_model(self, model: Any, name: str) -> str: ...

    def load_model(self, name: str) -> Any: ...

    def save_ensemble(self, name: str, config: dict[str, Any]) -> str: ...

    def backtest_ensemble(self, name: str, symbols: list[str] | None, days_back: float) -> dict: ...


_backend: Backend | None = None


def set_backend(backend: Backend | None) -> None:
    global _backend
    _backend = backend


def get_backend() -> Backend:
    """The registered backend; the store-backed default is imported (and registers itself) on first use."""
    if _backend is None:
        importlib.import_module(DEFAULT_BACKEND_MODULE)
    assert _backend is not None, f"{DEFAULT_BACKEND_MODULE} did not register a backend"
    return _backend


def load_model(name: str) -> Any:
    """A stored model by name (`model_001`, `direction_predictor_003`), verified against its hashes."""
    return get_backend().load_model(name)
