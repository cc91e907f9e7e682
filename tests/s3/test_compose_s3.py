"""docker-compose.yml keeps artifacts in its S3 service: no shared store volume, credentials with no
default."""

from __future__ import annotations

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def test_compose_puts_artifacts_in_its_s3_service_and_shares_no_store_volume() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    app = compose["x-app"]
    assert app["environment"]["MODEL_STORE_URL"].startswith("${MODEL_STORE_URL:-s3://")
    assert app["environment"]["S3_ENDPOINT_URL"] == "${S3_ENDPOINT_URL:-http://s3:8333}"
    for key in ("S3_ACCESS_KEY_ID", "S3_SECRET_ACCESS_KEY"):
        assert app["environment"][key].startswith(f"${{{key}:?"), f"{key} must have no default"
    assert "volumes" not in app, "app containers share no artifact volume"
    s3 = compose["services"]["s3"]
    assert s3["command"][:2] == ["server", "-dir=/data"] and "-s3" in s3["command"] and "ports" not in s3
    assert compose["services"]["migrate"]["depends_on"]["s3"]["condition"] == "service_healthy"
