"""Dashboard sign-in: an API key typed once into a form becomes a server-side session.

The browser keeps only a random 256-bit token in an HttpOnly, SameSite=Strict cookie scoped to
/dashboard. Redis keeps, under the token's SHA-256 (so a copy of Redis holds no usable token), the role,
the SHA-256 of the key (never the key) and a CSRF token that every state-changing request must echo in a
header. Each request re-checks the key by its hash (cached 30 s, like API keys), so revoking a key ends
its sessions within that time. Sessions expire after SESSION_SECONDS; signing out deletes it at once.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass

from redis.exceptions import RedisError

from app.core.config import get_settings
from app.core.errors import Unavailable
from app.core.logging import get_logger
from app.core.redis import get_redis
from app.services import keys

log = get_logger(__name__)

COOKIE_NAME = "mlpipe_dashboard"
COOKIE_PATH = "/dashboard"
SESSION_SECONDS = 8 * 3600
MAX_KEY_LENGTH = 256


@dataclass(frozen=True)
class Viewer:
    """Who is looking: the key's role and the session's CSRF token."""

    role: str
    csrf: str

    @property
    def is_operator(self) -> bool:
        return keys.allows(self.role, "operator")

    def csrf_ok(self, sent: str | None) -> bool:
        return bool(sent) and hmac.compare_digest(self.csrf, sent or "")


def _redis_key(token: str) -> str:
    digest = hashlib.sha256(token.encode()).hexdigest()
    return f"{get_settings().queue_prefix}:dashboard:session:{digest}"


def _unavailable(exc: RedisError) -> Unavailable:
    return Unavailable(f"dashboard sessions are kept in Redis, which is unreachable ({type(exc).__name__})")


def sign_in(key: str) -> tuple[str, Viewer] | None:
    """A new session for a valid key (token, viewer), or None for a wrong, revoked or absurd key."""
    key = key.strip()
    if not key or len(key) > MAX_KEY_LENGTH:
        return None
    role = keys.verify(key)
    if role is None:
        log.info("dashboard_sign_in_refused")
        return None
    token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(24)
    record = {"role": role, "key_sha256": keys.hash_key(key), "csrf": csrf, "created": time.time()}
    try:
        get_redis().set(_redis_key(token), json.dumps(record), ex=SESSION_SECONDS)
    except RedisError as exc:
        raise _unavailable(exc) from exc
    log.info("dashboard_signed_in", role=role)
    return token, Viewer(role=role, csrf=csrf)


def viewer_for(token: str | None) -> Viewer | None:
    """The session's viewer, or None when there is none, it expired, or its key has been revoked."""
    if not token or len(token) > 128:
        return None
    try:
        raw = get_redis().get(_redis_key(token))
    except RedisError as exc:
        raise _unavailable(exc) from exc
    if raw is None:
        return None
    record = json.loads(raw)
    role = keys.verify_digest(record["key_sha256"])
    if role is None:
        sign_out(token)
        return None
    return Viewer(role=role, csrf=record["csrf"])


def sign_out(token: str | None) -> None:
    if not token or len(token) > 128:
        return
    try:
        get_redis().delete(_redis_key(token))
    except RedisError as exc:
        raise _unavailable(exc) from exc
