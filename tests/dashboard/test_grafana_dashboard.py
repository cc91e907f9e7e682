"""The provisioned Grafana dashboard queries only metrics that /metrics exports, with labels those metrics
carry, and covers what the issue asks for; compose mounts what the provisioning files point at."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from app.core import metrics
from tests.api.server import serve

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "deploy" / "grafana" / "dashboards" / "mlpipe.json"
METRIC = re.compile(r"\b(mlpipe_[a-z0-9_]+)\b")
GROUPING = re.compile(r"\b(?:by|without)\s*\(([^)]*)\)")
MATCHER = re.compile(r"([a-z_][a-z0-9_]*)\s*(?:=~|!~|!=|=)\s*\"")
SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "gauge": ("",),
    "summary": ("_sum", "_count", "_created"),
}
# what the dashboard must show (issue 13): latency per route and per model, predictions served, reloads,
# cycle outcomes and durations, prediction-log losses
REQUIRED = {
    "mlpipe_http_request_seconds_bucket",
    "mlpipe_prediction_seconds_bucket",
    "mlpipe_predictions_total",
    "mlpipe_model_reloads_total",
    "mlpipe_cycles_total",
    "mlpipe_cycle_seconds_bucket",
    "mlpipe_prediction_log_dropped_total",
}


def _expressions(panels: list[dict[str, Any]]) -> list[str]:
    found = []
    for panel in panels:
        found += [t["expr"] for t in panel.get("targets", []) if t.get("expr")]
        found += _expressions(panel.get("panels", []))
    return found


@pytest.fixture(scope="module")
def exported() -> Iterator[dict[str, set[str]]]:
    """Sample name -> label names, from a real server's /metrics after one of each recorded event."""
    with serve() as url:
        metrics.observe_prediction("grafana_probe_001", "direction", 0.003)
        metrics.record_model_load("grafana_probe_001")
        metrics.record_reload("status_change")
        metrics.record_cycle("succeeded", 12.0)
        metrics.record_prediction_log_drop("queue_full", 1)
        metrics.set_models_loaded(1)
        httpx.get(f"{url}/health")
        text = httpx.get(f"{url}/metrics").text
    names: dict[str, set[str]] = {}
    for family in text_string_to_metric_families(text):
        for suffix in SUFFIXES.get(family.type, ("",)):
            names.setdefault(family.name + suffix, set())
        for sample in family.samples:
            names.setdefault(sample.name, set()).update(sample.labels)
    yield names


def test_every_metric_the_dashboard_queries_is_exported_with_the_labels_it_uses(
    exported: dict[str, set[str]],
) -> None:
    expressions = _expressions(json.loads(DASHBOARD.read_text())["panels"])
    assert expressions
    for expr in expressions:
        used = set(METRIC.findall(expr))
        assert used, f"a query of no mlpipe metric: {expr}"
        missing = used - set(exported)
        assert not missing, f"{expr}: /metrics exports no {sorted(missing)}"
        labels = {
            name.strip() for group in GROUPING.findall(expr) for name in group.split(",") if name.strip()
        }
        labels |= set(MATCHER.findall(expr))
        carried = set().union(*(exported[m] for m in used))
        assert labels <= carried, f"{expr}: no metric it reads has the labels {sorted(labels - carried)}"


def test_the_dashboard_covers_latency_predictions_reloads_cycles_and_log_losses() -> None:
    queried = {
        m for e in _expressions(json.loads(DASHBOARD.read_text())["panels"]) for m in METRIC.findall(e)
    }
    assert queried >= REQUIRED, sorted(REQUIRED - queried)


def test_compose_provisions_prometheus_and_grafana_with_the_files_in_the_repo() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    mounts = {}
    for service in ("prometheus", "grafana"):
        for volume in compose[service]["volumes"]:
            source, _, target = volume.partition(":")
            if source.startswith("./"):
                assert (ROOT / source).exists(), f"{service} mounts {source}, which is not in the repo"
                mounts[target.removesuffix(":ro")] = ROOT / source
    scrape = yaml.safe_load(mounts["/etc/prometheus/prometheus.yml"].read_text())["scrape_configs"][0]
    assert scrape["metrics_path"] == "/metrics" and scrape["static_configs"][0]["targets"] == ["api:8000"]
    provider = yaml.safe_load((mounts["/etc/grafana/provisioning"] / "dashboards" / "mlpipe.yml").read_text())
    assert provider["providers"][0]["options"]["path"] in mounts
    source = yaml.safe_load(
        (mounts["/etc/grafana/provisioning"] / "datasources" / "prometheus.yml").read_text()
    )
    uid = source["datasources"][0]["uid"]
    panels = [p for p in json.loads(DASHBOARD.read_text())["panels"] if p.get("targets")]
    assert {p["datasource"]["uid"] for p in panels} == {uid}
