"""API keys: hash-only storage, verification, environment keys, first-run keys and the `mlpipe keys` CLI."""

from __future__ import annotations

import hashlib

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from app.cli import app as cli
from app.core.config import reset_settings
from app.core.db import get_engine, session_scope
from app.core.errors import BadInput, Conflict, NotFound
from app.services import keys
from app.tables.api_keys import ApiKey


@pytest.fixture(autouse=True)
def _fresh_cache() -> None:
    keys.clear_cache()


def _rows() -> list[dict]:
    with get_engine().connect() as conn:
        return [dict(row._mapping) for row in conn.execute(text("SELECT * FROM api_keys"))]


def test_created_key_is_stored_only_as_its_sha256_hash() -> None:
    key = keys.create_key("predict", name="bot")

    (row,) = _rows()
    assert key.startswith("mlp_") and len(key) >= 4 + 43  # 32 random bytes, url-safe base64
    assert row["key_hash"] == hashlib.sha256(key.encode()).hexdigest()
    assert row["prefix"] == key[:8]
    secret = key[8:]
    assert not any(secret in str(value) for value in row.values())
    assert row["role"] == "predict" and row["name"] == "bot" and not row["revoked"]


def test_each_created_key_is_different() -> None:
    assert keys.create_key("predict") != keys.create_key("predict")


def test_verify_gives_the_role_of_a_known_key_and_none_otherwise() -> None:
    predict, operator = keys.create_key("predict"), keys.create_key("operator")

    assert keys.verify(predict) == "predict"
    assert keys.verify(operator) == "operator"
    assert keys.verify(predict + "x") is None
    assert keys.verify("mlp_" + "A" * 43) is None
    assert keys.verify("") is None and keys.verify(None) is None


def test_unknown_role_is_refused_with_the_valid_ones_named() -> None:
    with pytest.raises(BadInput, match="predict, operator"):
        keys.create_key("admin")


def test_operator_may_do_what_predict_may_but_not_the_reverse() -> None:
    assert keys.allows("operator", "predict") and keys.allows("operator", "operator")
    assert keys.allows("predict", "predict") and not keys.allows("predict", "operator")


def test_revoked_key_stops_verifying_at_once() -> None:
    key = keys.create_key("operator")
    assert keys.verify(key) == "operator"  # now cached

    revoked = keys.revoke(key[:8])

    assert revoked.revoked and revoked.prefix == key[:8]
    assert keys.cached_role(key) is None
    assert keys.verify(key) is None


def test_revoking_an_unknown_prefix_says_where_to_look() -> None:
    with pytest.raises(NotFound, match="mlpipe keys list"):
        keys.revoke("mlp_zzzz")


def test_revoking_a_shared_prefix_asks_for_the_whole_key() -> None:
    key = keys.create_key("predict")
    with session_scope() as session:  # a second key whose prefix happens to collide
        session.add(ApiKey(role="predict", key_hash="0" * 64, prefix=key[:8], created_ts=0))

    with pytest.raises(Conflict, match="whole key"):
        keys.revoke(key[:8])
    keys.revoke(key)
    assert keys.verify(key) is None


def test_verified_keys_are_answered_from_memory_until_the_ttl(monkeypatch: pytest.MonkeyPatch) -> None:
    key = keys.create_key("predict")
    assert keys.cached_role(key) is None
    keys.verify(key)
    with get_engine().begin() as conn:  # another process deletes it behind our back
        conn.execute(text("DELETE FROM api_keys"))

    assert keys.cached_role(key) == "predict"
    monkeypatch.setattr(keys, "CACHE_TTL_SECONDS", 0.0)
    keys.verify(key)
    assert keys.cached_role(key) is None


def test_environment_keys_are_accepted_and_never_stored(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PREDICT_API_KEY", "env-predict-secret-1234")
    monkeypatch.setenv("OPERATOR_API_KEY", "env-operator-secret-5678")
    reset_settings()
    try:
        assert keys.verify("env-predict-secret-1234") == "predict"
        assert keys.verify("env-operator-secret-5678") == "operator"
        assert keys.verify("env-predict-secret-123") is None
        assert keys.ensure_initial_keys() is None
        assert _rows() == []
    finally:
        monkeypatch.delenv("PREDICT_API_KEY")
        monkeypatch.delenv("OPERATOR_API_KEY")
        reset_settings()


def test_first_run_creates_one_key_per_role_once() -> None:
    made = keys.ensure_initial_keys()

    assert made is not None and set(made) == {"predict", "operator"}
    assert keys.verify(made["predict"]) == "predict"
    assert keys.verify(made["operator"]) == "operator"
    assert keys.ensure_initial_keys() is None
    assert len(_rows()) == 2


def test_first_run_keys_are_not_made_when_keys_exist() -> None:
    keys.create_key("operator")
    assert keys.ensure_initial_keys() is None
    assert len(_rows()) == 1


def test_cli_creates_lists_and_revokes_keys() -> None:
    runner = CliRunner()

    created = runner.invoke(cli, ["keys", "create", "--role", "operator", "--name", "ops"])
    assert created.exit_code == 0, created.output
    (key,) = [line for line in created.stdout.split() if line.startswith("mlp_")]
    assert keys.verify(key) == "operator"

    listed = runner.invoke(cli, ["keys", "list"])
    assert listed.exit_code == 0
    assert key[:8] in listed.stdout and "operator" in listed.stdout and "ops" in listed.stdout
    assert key[8:] not in listed.stdout

    revoked = runner.invoke(cli, ["keys", "revoke", key[:8]])
    assert revoked.exit_code == 0, revoked.output
    assert keys.verify(key) is None
    assert "yes" in runner.invoke(cli, ["keys", "list"]).stdout


def test_cli_refuses_an_unknown_role_with_a_message() -> None:
    result = CliRunner().invoke(cli, ["keys", "create", "--role", "admin"])
    assert result.exit_code == 1
    assert "unknown role 'admin'" in result.output
    assert _rows() == []
