"""One exception family: each carries the HTTP status a request boundary turns it into."""

from __future__ import annotations


class MLPipeError(Exception):
    status_code = 500

    def __init__(self, message: str, status_code: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        if status_code is not None:
            self.status_code = status_code


class BadInput(MLPipeError):
    """The caller asked for something malformed or impossible; the message says what to fix."""

    status_code = 422


class NotFound(MLPipeError):
    status_code = 404


class Conflict(MLPipeError):
    status_code = 409


class Unavailable(MLPipeError):
    """Nothing can answer yet (no model of that kind, stale data)."""

    status_code = 503


class IntegrityError(MLPipeError):
    """A stored artifact does not match its recorded hash, or a model is asked with the wrong features."""

    status_code = 409
