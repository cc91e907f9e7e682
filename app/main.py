"""The FastAPI application: `uvicorn app.main:app` or `mlpipe api`."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from app.api.errors import install_error_handlers
from app.api.metrics import MetricsMiddleware
from app.api.routes import cycles as cycle_routes
from app.api.routes import dashboard as dashboard_routes
from app.api.routes import ensembles as ensemble_routes
from app.api.routes import features as feature_routes
from app.api.routes import health
from app.api.routes import metrics as metrics_routes
from app.api.routes import models as model_routes
from app.api.routes import predict as predict_routes
from app.api.routes import replays as replay_routes
from app.api.routes import stream as stream_routes
from app.api.routes import tuning as tuning_routes
from app.core.config import get_settings
from app.core.logging import configure_logging


@asynccontextmanager
async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
    settings = get_settings()
    configure_logging(settings.log_level, settings.log_json)
    # Answers from memory run on the event loop; a thread computing features or loading candles holds the
    # GIL for up to the switch interval (5 ms by default) each time: 1 ms keeps their p99 low under load.
    sys.setswitchinterval(0.001)
    await _start_model_cache()
    _start_feature_workers()
    try:
        yield
    finally:
        await _stop_model_cache()


async def _start_model_cache() -> None:
    """Load the active models before serving, then watch for status changes (hot reload)."""
    from starlette.concurrency import run_in_threadpool

    from app.store.cache import get_cache

    cache = get_cache()
    try:
        await run_in_threadpool(cache.reload, "startup")
    except Exception as exc:  # no database yet: serve, and let the watcher load models when it appears
        from app.core.logging import get_logger

        get_logger(__name__).error("model_cache_not_loaded", error=str(exc))
    cache.start()
    from app.services.key_events import watcher

    watcher.start()


def _start_feature_workers() -> None:
    from app.api.routes.features import start_workers

    start_workers()


async def _stop_model_cache() -> None:
    from starlette.concurrency import run_in_threadpool

    from app.api.routes.features import stop_workers
    from app.core.metrics import process_exiting
    from app.services.key_events import watcher
    from app.services.prediction_log import get_prediction_log
    from app.store.cache import get_cache

    get_cache().stop()
    watcher.stop(timeout=1.0)
    stop_workers()
    await run_in_threadpool(get_prediction_log().stop)
    process_exiting()


MAX_BODY_BYTES = 4 * 1024 * 1024  # ~10,000 candles; anything larger is a 413, never read into memory


def create_app() -> FastAPI:
    app = FastAPI(
        title="mlpipe",
        summary="Crypto-market ML predictions: direction, risk, price, momentum and volatility models.",
        version="0.1.0",
        lifespan=lifespan,
        max_body_size=MAX_BODY_BYTES,
    )
    install_error_handlers(app)
    app.include_router(health.router)
    app.include_router(metrics_routes.router)
    app.include_router(predict_routes.router)
    app.include_router(stream_routes.router)
    app.include_router(model_routes.router)
    app.include_router(feature_routes.router)
    app.include_router(ensemble_routes.router)
    app.include_router(cycle_routes.router)
    app.include_router(replay_routes.router)
    app.include_router(tuning_routes.router)
    app.include_router(dashboard_routes.router)
    app.add_middleware(MetricsMiddleware)
    return app


app = create_app()
