"""Annotated dependencies for routes: a database session, the serving caches and the two API-key levels.

Keys travel as `Authorization: Bearer <key>` or `X-API-Key: <key>` (DESIGN section 1). Both schemes are
declared, so the OpenAPI page at /docs offers an Authorize button for either.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException, Security, status
from fastapi.concurrency import run_in_threadpool
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from sqlmodel import Session

from app.core.db import session_scope
from app.services import keys
from app.services.feature_rows import FeatureRowCache, get_feature_rows
from app.store.cache import ModelCache, get_cache


def get_session() -> Iterator[Session]:
    """One session per request; it commits when the route returns, before the answer is sent."""
    with session_scope() as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session, scope="function")]


async def _model_cache() -> ModelCache:  # async: a plain function would cost a thread hop per request
    return get_cache()


async def _feature_rows() -> FeatureRowCache:
    return get_feature_rows()


CacheDep = Annotated[ModelCache, Depends(_model_cache)]
FeatureRowsDep = Annotated[FeatureRowCache, Depends(_feature_rows)]

_bearer = HTTPBearer(
    auto_error=False,
    scheme_name="BearerKey",
    description="An mlpipe API key sent as `Authorization: Bearer <key>`.",
)
_header = APIKeyHeader(
    name="X-API-Key",
    auto_error=False,
    scheme_name="ApiKeyHeader",
    description="An mlpipe API key sent as `X-API-Key: <key>`.",
)

HOW_TO_SEND = (
    "send an API key as 'Authorization: Bearer <key>' or 'X-API-Key: <key>' "
    "(make one with `mlpipe keys create --role predict`)"
)


def _unauthorized(message: str) -> HTTPException:
    return HTTPException(status.HTTP_401_UNAUTHORIZED, detail=message, headers={"WWW-Authenticate": "Bearer"})


async def _role_of(bearer: HTTPAuthorizationCredentials | None, header_key: str | None) -> str:
    key = header_key or (bearer.credentials if bearer is not None else None)
    if not key:
        raise _unauthorized(f"missing API key: {HOW_TO_SEND}")
    answered, role = keys.cached(key)
    if not answered:
        role = await run_in_threadpool(keys.verify, key)
    if role is None:
        raise _unauthorized(f"invalid or revoked API key: check it, or {HOW_TO_SEND}")
    return role


_Bearer = Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)]
_Header = Annotated[str | None, Security(_header)]


async def _caller_role(bearer: _Bearer, header_key: _Header) -> str:
    return await _role_of(bearer, header_key)


async def require_predict(role: Annotated[str, Depends(_caller_role)]) -> str:
    """Predictions and reads: a predict or an operator key."""
    return role


async def require_operator(role: Annotated[str, Depends(_caller_role)]) -> str:
    """Anything that changes state (cycles, statuses, ensembles) needs an operator key."""
    if not keys.allows(role, "operator"):
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            detail="this endpoint changes state and needs an operator key; the key sent is a predict key "
            "(make one with `mlpipe keys create --role operator`)",
        )
    return role


PredictAuth = Annotated[str, Depends(require_predict)]
OperatorAuth = Annotated[str, Depends(require_operator)]


@dataclass(frozen=True)
class Serving:
    """What a predict route needs, from one dependency: the caller's role and the serving caches."""

    role: str
    cache: ModelCache
    rows: FeatureRowCache


async def predict_serving(bearer: _Bearer, header_key: _Header) -> Serving:
    """A predict or an operator key (as `require_predict`), and the process's model and feature-row caches.

    One dependency instead of three (key, `CacheDep`, `FeatureRowsDep`): FastAPI's per-dependency work is a
    measurable share of a cached prediction's cost (bench/README.md, issue 14)."""
    return Serving(await _role_of(bearer, header_key), get_cache(), get_feature_rows())


ServingDep = Annotated[Serving, Depends(predict_serving)]
