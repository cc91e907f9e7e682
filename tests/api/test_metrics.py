"""`/metrics`: request histograms labelled by route template, the recording helpers, cycle outcomes counted
across processes through Redis, and the multiprocess mode."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import APIRouter
from prometheus_client.parser import text_string_to_metric_families

from app.core import metrics
from app.main import create_app
from tests.api.server import serve

ROOT = Path(__file__).resolve().parents[2]
probe = APIRouter(prefix="/_metrics_probe")


@probe.get("/things/{thing_id}")
async def thing(thing_id: int) -> dict[str, int]:
    return {"thing_id": thing_id}


@probe.get("/boom")
async def boom() -> None:
    raise RuntimeError("a bug")


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    app = create_app()
    app.include_router(probe)
    with serve(app) as url:
        yield url


@pytest.fixture()
def http(base_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=base_url, timeout=5) as client:
        yield client


def _samples(http: httpx.Client) -> dict[tuple[str, frozenset], float]:
    response = http.get("/metrics")
    assert response.status_code == 200
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
    }


def _value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def test_metrics_is_open_prometheus_text(http: httpx.Client) -> None:
    response = http.get("/metrics")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert "# TYPE mlpipe_http_request_seconds histogram" in response.text


def test_requests_are_timed_by_route_template_not_raw_path(http: httpx.Client) -> None:
    before = _samples(http)
    for n in (1, 2, 3):
        assert http.get(f"/_metrics_probe/things/{n}").status_code == 200
    assert http.get("/_metrics_probe/things/not-a-number").status_code == 422

    after = _samples(http)
    route = "/_metrics_probe/things/{thing_id}"
    ok = {"method": "GET", "route": route, "status": "200"}
    assert _value(after, "mlpipe_http_request_seconds_count", **ok) - _value(
        before, "mlpipe_http_request_seconds_count", **ok
    ) == 3
    assert _value(after, "mlpipe_http_request_seconds_bucket", **ok, le="+Inf") >= 3
    assert _value(after, "mlpipe_http_request_seconds_count", method="GET", route=route, status="422") >= 1
    routes = {dict(labels).get("route") for (_name, labels) in after}
    assert not any(r and "/things/1" in r for r in routes)


def test_unknown_paths_share_one_label(http: httpx.Client) -> None:
    for n in range(3):
        assert http.get(f"/no/such/path/{n}").status_code == 404

    after = _samples(http)
    unmatched = {"method": "GET", "route": "unmatched", "status": "404"}
    assert _value(after, "mlpipe_http_request_seconds_count", **unmatched) >= 3
    assert not any("/no/such/path" in str(labels) for (_name, labels) in after)


def test_a_crashing_route_is_recorded_as_500(http: httpx.Client) -> None:
    labels = {"method": "GET", "route": "/_metrics_probe/boom", "status": "500"}
    before = _value(_samples(http), "mlpipe_http_request_seconds_count", **labels)

    # uvicorn drops the connection after an unhandled error: do not let the pool reuse it
    assert http.get("/_metrics_probe/boom", headers={"Connection": "close"}).status_code == 500

    assert _value(_samples(http), "mlpipe_http_request_seconds_count", **labels) == before + 1


def test_recording_helpers_show_on_metrics(http: httpx.Client) -> None:
    before = _samples(http)

    metrics.observe_prediction("model_t1", "direction", 0.002)
    metrics.observe_prediction("model_t1", "direction", 0.004)
    metrics.record_model_load("model_t1")
    metrics.record_reload("promotion")
    metrics.set_models_loaded(7)

    after = _samples(http)

    def grew(name: str, **labels: str) -> float:
        return _value(after, name, **labels) - _value(before, name, **labels)

    assert grew("mlpipe_predictions_total", model="model_t1", kind="direction") == 2
    assert grew("mlpipe_prediction_seconds_count", model="model_t1") == 2
    assert grew("mlpipe_prediction_seconds_sum", model="model_t1") == pytest.approx(0.006)
    assert grew("mlpipe_prediction_seconds_bucket", model="model_t1", le="0.0025") == 1
    assert grew("mlpipe_model_loads_total", model="model_t1") == 1
    assert grew("mlpipe_model_reloads_total", reason="promotion") == 1
    assert _value(after, "mlpipe_models_loaded") == 7


def _run(code: str, **env: str) -> str:
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_cycle_outcomes_recorded_by_another_process_show_on_the_api(http: httpx.Client) -> None:
    metrics.record_cycle("succeeded")
    _run(  # a worker process finishing two cycles
        """
        from app.core.metrics import record_cycle
        record_cycle("partial")
        record_cycle("partial")
        """
    )

    after = _samples(http)
    assert _value(after, "mlpipe_cycles_total", outcome="partial") == 2
    assert _value(after, "mlpipe_cycles_total", outcome="succeeded") == 1


def test_multiprocess_mode_sums_the_samples_of_every_process(tmp_path: Path) -> None:
    _run(
        """
        from app.core.metrics import observe_prediction
        observe_prediction("model_mp", "risk", 0.003)
        """,
        PROMETHEUS_MULTIPROC_DIR=str(tmp_path),
    )
    text = _run(  # a second process records too, then renders what both recorded
        """
        import sys
        from app.core.metrics import observe_prediction, record_cycle, render_metrics
        observe_prediction("model_mp", "risk", 0.003)
        record_cycle("failed")
        body, _ = render_metrics()
        sys.stdout.write(body.decode())
        """,
        PROMETHEUS_MULTIPROC_DIR=str(tmp_path),
    )

    samples = {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    assert _value(samples, "mlpipe_predictions_total", model="model_mp", kind="risk") == 2
    assert _value(samples, "mlpipe_prediction_seconds_count", model="model_mp") == 2
    assert _value(samples, "mlpipe_cycles_total", outcome="failed") == 1
