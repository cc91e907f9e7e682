"""The FastAPI application: `uvicorn app.main:app` or `mlpipe api`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from app.api.errors import install_error_handlers
from app.api.routes import health
from app.core.config import get_settings
from app.core.logging import configure_logging


@asynccontextmanager
async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
    settings = get_settings()
    configure_logging(settings.log_level, settings.log_json)
    yield


def create_app() -> FastAPI:
    app = FastAPI(
        title="mlpipe",
        summary="Crypto-market ML predictions: direction, risk, price, momentum and volatility models.",
        version="0.1.0",
        lifespan=lifespan,
    )
    install_error_handlers(app)
    app.include_router(health.router)
    return app


app = create_app()
