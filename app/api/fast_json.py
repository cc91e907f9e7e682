"""Predict answers as JSON bytes, written directly (orjson) instead of through response-model validation.

The predict routes still declare their response models (`response_model=`), so the OpenAPI schema documents
them, but return a ready `Response`, which FastAPI sends as is: validating a service-built dict into
`Prediction` and dumping it again cost about as much as the answer itself. The bytes are what pydantic
wrote before (the same keys, `as_of` as `...Z`, floats that read back to the same values); tests check the
answers against the schema and against pydantic's own dump.
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import Response

_OPTIONS = orjson.OPT_UTC_Z | orjson.OPT_SERIALIZE_NUMPY


def _other(value: Any) -> Any:
    item = getattr(value, "item", None)  # a numpy scalar orjson does not take
    if item is not None:
        return item()
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


def only(answer: dict[str, Any], fields: frozenset[str]) -> dict[str, Any]:
    """The answer's keys the response model has (as validation into it dropped the others)."""
    return {k: v for k, v in answer.items() if k in fields}


def dumps(content: Any) -> bytes:
    return orjson.dumps(content, default=_other, option=_OPTIONS)


def json_response(content: Any, status_code: int = 200) -> Response:
    return Response(dumps(content), status_code=status_code, media_type="application/json")
