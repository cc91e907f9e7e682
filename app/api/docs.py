"""OpenAPI error answers with examples, so every route documents its 4xx/503 the same way.

    @router.get("/{name}", responses=errors(401, 404, 422, not_found="unknown model"))

Each code gets its schema (`ErrorOut`, `ValidationErrorOut` for 422, `ConflictOut` for 409) and an example
answer; a keyword overrides a code's description (`unauthorized=`, `forbidden=`, `not_found=`, `conflict=`,
`invalid=`, `too_many=`, `unavailable=`).
"""

from __future__ import annotations

from typing import Any

from app.api.schemas import ConflictOut, ErrorOut, ValidationErrorOut

_SYMBOL_REASON = (
    "String should match pattern '^[A-Z0-9]{1,15}-[A-Z0-9]{1,15}$' "
    "(a market as BASE-QUOTE in capitals and digits, e.g. BTC-USDT)"
)
# code -> (description keyword, default description, schema, example answer)
_DEFAULTS: dict[int, tuple[str, str, type, dict[str, Any]]] = {
    401: ("unauthorized", "missing, invalid or revoked API key", ErrorOut, {
        "detail": "missing API key: send an API key as 'Authorization: Bearer <key>' or "
                  "'X-API-Key: <key>' (make one with `mlpipe keys create --role predict`)"}),
    403: ("forbidden", "the key is a predict key; this endpoint changes state and needs an operator key",
          ErrorOut, {"detail": "this endpoint changes state and needs an operator key; the key sent is a "
                               "predict key (make one with `mlpipe keys create --role operator`)"}),
    404: ("not_found", "not found", ErrorOut, {
        "detail": "no model named 'direction_xgb_009'. `mlpipe models` (or GET /models) lists them"}),
    409: ("conflict", "conflicts with the current state", ConflictOut, {
        "detail": "transition archived -> superseded is not allowed"}),
    422: ("invalid", "invalid request: each field and the reason", ValidationErrorOut, {
        "detail": f"invalid request: symbol: {_SYMBOL_REASON}",
        "errors": [{"field": "symbol", "reason": _SYMBOL_REASON}]}),
    429: ("too_many", "too many requests of this kind from this key; retry after `Retry-After` seconds",
          ErrorOut, {"detail": "more than 5 feature requests a second from this key; retry in 1 s"}),
    503: ("unavailable", "nothing can answer yet", ErrorOut, {
        "detail": "no active direction model yet: train one (`mlpipe cycle` or POST /cycles) or activate "
                  "one with PATCH /models/{name}"}),
}


def errors(*codes: int, example: dict[int, dict[str, Any]] | None = None, **descriptions: str) -> dict:
    """`responses=` for the given status codes, each with its schema, description and an example answer."""
    names = {name: code for code, (name, *_rest) in _DEFAULTS.items()}
    unknown = set(descriptions) - set(names)
    if unknown:
        raise TypeError(f"unknown description keywords {sorted(unknown)}; use {sorted(names)}")
    given = {names[k]: v for k, v in descriptions.items()}
    out: dict[int, dict[str, Any]] = {}
    for code in codes:
        _name, description, model, sample = _DEFAULTS[code]
        out[code] = {
            "model": model,
            "description": given.get(code, description),
            "content": {"application/json": {"example": (example or {}).get(code, sample)}},
        }
    return out
