"""API keys: made once, stored only as SHA-256 hashes, checked through a short in-memory cache.

Two roles: `predict` (predictions and reads) and `operator` (everything, including what changes state).
Besides the keys in the `api_keys` table, `PREDICT_API_KEY` / `OPERATOR_API_KEY` from the settings are
accepted; they are compared by hash and never written anywhere.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from typing import Literal, cast

from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import select

from app.core.config import get_settings
from app.core.db import session_scope
from app.core.errors import BadInput, Conflict, NotFound, Unavailable
from app.core.logging import get_logger
from app.tables.api_keys import ApiKey

Role = Literal["predict", "operator"]
ROLES: tuple[Role, ...] = ("predict", "operator")
KEY_PREFIX = "mlp_"
PREFIX_LENGTH = 8
CACHE_TTL_SECONDS = 30.0
SNAPSHOT_SECONDS = 1.0  # the valid keys are re-read at most this often, however many keys are tried
STALE_OK_SECONDS = 300.0  # while the database is down, a key verified this long ago is still accepted

_RANK: dict[str, int] = {"predict": 1, "operator": 2}
_cache: dict[str, tuple[Role, float]] = {}  # key hash -> (role, monotonic expiry); valid keys only
_cache_lock = threading.Lock()
# every valid key's hash and role, as last read (monotonic time): a refused key is refused from it
_snapshot: tuple[float, dict[str, Role]] = (float("-inf"), {})
_snapshot_lock = threading.Lock()
log = get_logger(__name__)


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def allows(role: str, needed: str) -> bool:
    """An operator key may do everything a predict key may."""
    return _RANK.get(role, 0) >= _RANK[needed]


def _check_role(role: str) -> Role:
    if role not in ROLES:
        raise BadInput(f"unknown role {role!r}: use one of {', '.join(ROLES)}")
    return cast(Role, role)


def create_key(role: str, name: str = "") -> str:
    """Make a key and store only its hash: the plaintext returned here is the one and only copy."""
    role = _check_role(role)
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    row = ApiKey(
        name=name,
        role=role,
        key_hash=hash_key(key),
        prefix=key[:PREFIX_LENGTH],
        created_ts=int(time.time() * 1000),
    )
    with session_scope() as session:
        session.add(row)
    clear_cache()  # the snapshot must see it
    log.info("api_key_created", role=role, prefix=row.prefix, name=name)
    return key


def _env_role(digest: str) -> Role | None:
    settings = get_settings()
    found: Role | None = None
    for role, key in (("predict", settings.predict_api_key), ("operator", settings.operator_api_key)):
        if key and hmac.compare_digest(hash_key(key), digest):
            found = cast(Role, role)  # no early exit: the same work whichever key matches
    return found


def _read_snapshot() -> dict[str, Role]:
    """Every valid key, re-read at most once per SNAPSHOT_SECONDS (one reader at a time; others wait)."""
    global _snapshot
    with _snapshot_lock:
        read_at, roles = _snapshot
        if time.monotonic() - read_at < SNAPSHOT_SECONDS:
            return roles
        try:
            with session_scope() as session:
                rows = session.exec(
                    select(ApiKey.key_hash, ApiKey.role).where(ApiKey.revoked == False)  # noqa: E712
                ).all()
        except SQLAlchemyError as exc:
            reason = type(exc).__name__
            raise Unavailable(f"cannot check the API key: the database is unreachable ({reason})") from exc
        roles = {digest: cast(Role, role) for digest, role in rows if role in ROLES}
        _snapshot = (time.monotonic(), roles)
        return roles


def _db_role(digest: str) -> Role | None:
    return _read_snapshot().get(digest)


def cached(key: str) -> tuple[bool, Role | None]:
    """(answered from memory, role) without I/O: a key verified in the last CACHE_TTL_SECONDS, or any key
    when the valid keys were read in the last SNAPSHOT_SECONDS. (False, None) means "ask `verify`"."""
    digest = hash_key(key)
    now = time.monotonic()
    hit = _cache.get(digest)
    if hit is not None and hit[1] > now:
        return True, hit[0]
    read_at, roles = _snapshot
    if now - read_at < SNAPSHOT_SECONDS and digest not in roles:
        return True, _env_role(digest)
    return False, None


def cached_role(key: str) -> Role | None:
    """The role of a key verified in the last CACHE_TTL_SECONDS, without I/O; None means "ask `verify`"."""
    return cached(key)[1]


def verify(key: str | None) -> Role | None:
    """The role a key grants, or None for an unknown or revoked key.

    The key is looked up by its hash, so no secret is ever compared byte by byte. Valid answers are cached
    for CACHE_TTL_SECONDS (a revoked key stops working in this process at once, in others when the
    revocation event reaches them, `app.services.key_events`, at the latest within the TTL).
    Keys are checked against a snapshot of the valid ones, re-read at most once per SNAPSHOT_SECONDS: a
    flood of bad keys, one or a million distinct guesses, costs one small query a second and no memory
    per guess. While the database does not answer, a key verified within STALE_OK_SECONDS keeps its
    role (a revocation made meanwhile reaches this process when the database answers again).
    """
    if not key:
        return None
    return _lookup(hash_key(key))


def verify_digest(digest: str) -> Role | None:
    """`verify` for a key known only by its SHA-256 (a dashboard session keeps the hash, never the key),
    answered from the cache while it is fresh."""
    hit = _cache.get(digest)
    if hit is not None and hit[1] > time.monotonic():
        return hit[0]
    return _lookup(digest)


def _lookup(digest: str) -> Role | None:
    try:
        role = _env_role(digest) or _db_role(digest)
    except Unavailable:
        stale = _cache.get(digest)
        if stale is not None and stale[1] + STALE_OK_SECONDS > time.monotonic():
            return stale[0]  # the database is down: a key verified a few minutes ago keeps working
        raise
    with _cache_lock:
        if role is None:
            _cache.pop(digest, None)
        else:
            _cache[digest] = (role, time.monotonic() + CACHE_TTL_SECONDS)
    return role


def clear_cache() -> None:
    """Forget every verified key and the snapshot (a revocation in this process takes effect at once)."""
    global _snapshot
    with _cache_lock:
        _cache.clear()
    with _snapshot_lock:
        _snapshot = (float("-inf"), {})


def list_keys() -> list[ApiKey]:
    with session_scope() as session:
        return list(session.exec(select(ApiKey).order_by(ApiKey.id)).all())  # type: ignore[arg-type]


def revoke(prefix_or_key: str) -> ApiKey:
    """Revoke one active key, named by its displayed prefix (or the whole key when prefixes collide)."""
    with session_scope() as session:
        if len(prefix_or_key) > PREFIX_LENGTH:
            query = select(ApiKey).where(ApiKey.key_hash == hash_key(prefix_or_key))
        else:
            query = select(ApiKey).where(ApiKey.prefix == prefix_or_key)
        matches = [row for row in session.exec(query).all() if not row.revoked]
        shown = prefix_or_key[:PREFIX_LENGTH]
        if not matches:
            raise NotFound(f"no active API key matches {shown!r}: `mlpipe keys list` shows them")
        if len(matches) > 1:
            raise Conflict(f"{len(matches)} active keys share the prefix {shown!r}: pass the whole key")
        row = matches[0]
        row.revoked = True
        session.add(row)
    clear_cache()
    from app.services.key_events import notify_keys_changed

    notify_keys_changed(row.prefix)  # the other API processes forget the key now, not within the TTL
    log.info("api_key_revoked", role=row.role, prefix=row.prefix)
    return row


def ensure_initial_keys() -> dict[str, str] | None:
    """On a first run, make one predict and one operator key so `mlpipe up` can print them once.

    Nothing is made when keys exist already or come from the environment, so calling it on every start is
    safe.
    """
    settings = get_settings()
    if settings.predict_api_key or settings.operator_api_key:
        return None
    with session_scope() as session:
        if session.exec(select(ApiKey.id).limit(1)).first() is not None:
            return None
    return {role: create_key(role, name="initial") for role in ROLES}
