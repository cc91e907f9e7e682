"""One handler turns the MLPipeError family into clear JSON answers; bad bodies become 422 with the field."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from app.core.errors import MLPipeError


async def _mlpipe_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, MLPipeError)
    return JSONResponse({"detail": exc.message}, status_code=exc.status_code)


async def _validation_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [
        {"field": ".".join(str(p) for p in err.get("loc", ()) if p != "body"), "reason": err.get("msg", "")}
        for err in exc.errors()
    ]
    summary = "; ".join(f"{e['field'] or 'body'}: {e['reason']}" for e in errors)
    return JSONResponse({"detail": f"invalid request: {summary}", "errors": errors}, status_code=422)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(MLPipeError, _mlpipe_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
