"""The dashboard over real HTTP, without a browser: sign-in sessions, redirects that cannot leave the site,
CSRF and roles on the actions, revoked keys, the static files' caching, the security headers."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from app import dashboard
from app.services import keys
from tests.api.server import serve


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    with serve() as url:
        yield url


@contextmanager
def _signed_in(base_url: str, role: str) -> Iterator[httpx.Client]:
    key = keys.create_key(role)
    with httpx.Client(base_url=base_url, timeout=10) as client:
        answer = client.post("/dashboard/login", data={"key": key, "next": "/dashboard/cycles"})
        assert answer.status_code == 303 and answer.headers["location"] == "/dashboard/cycles"
        yield client


def _csrf(client: httpx.Client) -> str:
    page = client.get("/dashboard/tuning").text
    return page.split('name="csrf-token" content="', 1)[1].split('"', 1)[0]


def test_a_page_without_a_session_redirects_to_sign_in_and_back(base_url: str) -> None:
    answer = httpx.get(f"{base_url}/dashboard/cycles?id=abc123", follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/dashboard/login?next=/dashboard/cycles%3Fid%3Dabc123"


@pytest.mark.parametrize(
    "target", ["//evil.example/x", "https://evil.example/", "/elsewhere", "/dashboard\\@x"]
)
def test_sign_in_never_redirects_off_the_dashboard(base_url: str, target: str) -> None:
    key = keys.create_key("predict")
    answer = httpx.post(f"{base_url}/dashboard/login", data={"key": key, "next": target})
    assert answer.status_code == 303 and answer.headers["location"] == "/dashboard"


def test_the_session_cookie_is_httponly_strict_and_scoped(base_url: str) -> None:
    answer = httpx.post(f"{base_url}/dashboard/login", data={"key": keys.create_key("predict")})
    cookie = answer.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie and "path=/dashboard" in cookie
    assert "secure" not in cookie  # plain http on loopback; https requests get `Secure`


def test_a_revoked_key_ends_its_sessions(base_url: str) -> None:
    key = keys.create_key("predict")
    with httpx.Client(base_url=base_url) as client:
        client.post("/dashboard/login", data={"key": key})
        assert client.get("/dashboard/models").status_code == 200
        keys.revoke(key)
        assert client.get("/dashboard/models", follow_redirects=False).status_code == 303


def test_signing_out_ends_the_session_on_the_server(base_url: str) -> None:
    with _signed_in(base_url, "predict") as client:
        token = client.cookies["mlpipe_dashboard"]
        client.post("/dashboard/logout")
    replay = httpx.get(f"{base_url}/dashboard", cookies={"mlpipe_dashboard": token}, follow_redirects=False)
    assert replay.status_code == 303


def test_actions_need_an_operator_session_and_its_csrf_token(base_url: str) -> None:
    with _signed_in(base_url, "predict") as reader:
        refused = reader.post(
            "/dashboard/actions/tuning", json={"definition": "x"}, headers={"X-CSRF-Token": _csrf(reader)}
        )
        assert refused.status_code == 403 and "operator key" in refused.json()["detail"]
    with _signed_in(base_url, "operator") as operator:
        assert operator.post("/dashboard/actions/tuning", json={"definition": "x"}).status_code == 403
        wrong = operator.post(
            "/dashboard/actions/tuning", json={"definition": "x"}, headers={"X-CSRF-Token": "no"}
        )
        assert wrong.status_code == 403
        passed = operator.post(
            "/dashboard/actions/tuning",
            json={"definition": "direction_predictor"},
            headers={"X-CSRF-Token": _csrf(operator)},
        )
        # past the session and CSRF checks: the tuning service answers (no candles are stored here yet)
        assert passed.status_code == 503 and "no candles stored" in passed.json()["detail"]
        unknown = operator.post(
            "/dashboard/actions/models/no_such_model_001",
            json={"status": "archived"},
            headers={"X-CSRF-Token": _csrf(operator)},
        )
        assert unknown.status_code == 404
    assert httpx.post(f"{base_url}/dashboard/actions/cycle").status_code == 401


def test_pages_forbid_framing_and_foreign_scripts(base_url: str) -> None:
    with _signed_in(base_url, "predict") as client:
        answer = client.get("/dashboard")
    assert answer.status_code == 200
    policy = answer.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy
    assert answer.headers["cache-control"] == "no-store"


def test_an_unknown_model_page_says_what_is_missing(base_url: str) -> None:
    with _signed_in(base_url, "predict") as client:
        answer = client.get("/dashboard/models/no_such_model_001")
    assert answer.status_code == 404 and "no model named" in answer.text


def test_static_files_are_gzipped_and_cached_for_a_year_under_their_hash(base_url: str) -> None:
    url = dashboard.static_url("plotly.js")
    answer = httpx.get(base_url + url, headers={"Accept-Encoding": "gzip"})
    assert answer.status_code == 200 and answer.headers["content-encoding"] == "gzip"
    assert "immutable" in answer.headers["cache-control"]
    assert len(answer.content) == dashboard.plotly_path().stat().st_size  # httpx decodes: the whole file
    again = httpx.get(base_url + url, headers={"If-None-Match": answer.headers["etag"]})
    assert again.status_code == 304
    assert httpx.get(f"{base_url}/dashboard/static/plotly.js?v=old").headers["cache-control"] == "no-cache"
    for name in ("..%2F..%2Fpyproject.toml", "nothing.js", "base.html"):
        assert httpx.get(f"{base_url}/dashboard/static/{name}").status_code == 404


def test_without_the_npm_bundle_plotly_comes_from_the_python_package(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(dashboard, "STATIC_DIR", tmp_path)
    found = dashboard.plotly_path()
    assert found.name == "plotly.min.js" and found.parent.name == "package_data" and found.is_file()
