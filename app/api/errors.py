"""One handler turns the MLPipeError family into clear JSON answers; bad bodies become 422 with the field."""

from __future__ import annotations

import re
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from starlette.exceptions import HTTPException

from app.api.schemas import PATTERN_HINTS
from app.core.errors import MLPipeError

# Service messages about a request field start with it ("candles: must be sorted ..."): a 422 then names it.
_FIELD_PREFIX = re.compile(r"^([a-z_][a-z0-9_.]*): (.+)$", re.DOTALL)


async def _mlpipe_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, MLPipeError)
    body: dict[str, Any] = {"detail": exc.message}
    match = _FIELD_PREFIX.match(exc.message)
    if exc.status_code == 422 and match:
        body["errors"] = [{"field": match.group(1), "reason": match.group(2)}]
    return JSONResponse(body, status_code=exc.status_code)


def _printable(text: str) -> str:
    """Echoed input (a dict key in `loc`) may hold lone surrogates that UTF-8 cannot carry."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _field_and_reason(err: dict[str, Any], json_body: bool) -> tuple[str, str]:
    """Where and why, in words a caller can act on (the raw pydantic texts are kept, hints added)."""
    loc = [_printable(str(p)) for p in err.get("loc", ())]
    kind = err.get("type", "")
    reason = str(err.get("msg", ""))
    ctx = err.get("ctx") or {}
    if kind == "json_invalid":
        position = loc[1] if len(loc) > 1 else "?"
        return "body", f"invalid JSON at character {position}: {ctx.get('error', reason)}"
    field = ".".join(p for p in loc if p != "body")
    if kind == "string_pattern_mismatch" and ctx.get("pattern") in PATTERN_HINTS:
        reason = f"{reason} ({PATTERN_HINTS[ctx['pattern']]})"
    elif kind == "string_unicode":
        reason = "must be valid UTF-8 text (a lone surrogate \\ud800-\\udfff is not)"
    elif kind == "value_error":
        # a model validator's message starts with the field it is about: "Value error, weights: ..."
        text = reason.removeprefix("Value error, ")
        match = _FIELD_PREFIX.match(text)
        if match and not field:
            return match.group(1), match.group(2)
        reason = text
    elif loc == ["body"] and not json_body:
        reason = f"{reason} (send the body as JSON with `Content-Type: application/json`)"
    return field, reason


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    json_body = "json" in request.headers.get("content-type", "")
    errors = [
        dict(zip(("field", "reason"), _field_and_reason(err, json_body), strict=True)) for err in exc.errors()
    ]
    summary = "; ".join(f"{e['field'] or 'body'}: {e['reason']}" for e in errors[:5])
    if len(errors) > 5:
        summary += f"; and {len(errors) - 5} more (see `errors`)"
    return JSONResponse({"detail": f"invalid request: {summary}", "errors": errors}, status_code=422)


# FastAPI's answer when a body cannot be decoded at all (not UTF-8, nested past Python's recursion limit).
_UNPARSEABLE = "There was an error parsing the body"


async def _http_error(request: Request, exc: Exception) -> Response:
    """A body that cannot be parsed is an invalid request like any other: 422 naming the body."""
    assert isinstance(exc, HTTPException)
    if exc.status_code == 400 and exc.detail == _UNPARSEABLE:
        reason = "not parseable as JSON: send UTF-8 encoded JSON, nested at most a few hundred levels deep"
        return JSONResponse(
            {"detail": f"invalid request: body: {reason}", "errors": [{"field": "body", "reason": reason}]},
            status_code=422,
        )
    return await http_exception_handler(request, exc)


# A dependency that is down or does not answer in time (DESIGN 8: a fast 503, never a 500 or a hang). Only
# the kind of failure is named: the driver's text carries hosts and user names.
_DEPENDENCY_ERRORS = {
    OperationalError: "database", InterfaceError: "database", PoolTimeoutError: "database",
    RedisConnectionError: "Redis", RedisTimeoutError: "Redis",
}


async def _dependency_error(_request: Request, exc: Exception) -> JSONResponse:
    what = next((name for kind, name in _DEPENDENCY_ERRORS.items() if isinstance(exc, kind)), "a dependency")
    return JSONResponse(
        {"detail": f"the {what} does not answer ({type(exc).__name__}); retry in a few seconds"},
        status_code=503,
        headers={"Retry-After": "2"},
    )


def install_error_handlers(app: FastAPI) -> None:
    for kind in _DEPENDENCY_ERRORS:
        app.add_exception_handler(kind, _dependency_error)
    app.add_exception_handler(MLPipeError, _mlpipe_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(HTTPException, _http_error)
