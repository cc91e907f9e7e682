"""The metrics the Grafana dashboard needs beyond the request counters: cycle durations (recorded by the
worker that finishes a cycle, read by any API process) and the predictions the log could not keep."""

from __future__ import annotations

import pytest
from prometheus_client.parser import text_string_to_metric_families

from app.core import metrics


def _samples() -> dict[tuple[str, frozenset], float]:
    body, _ = metrics.render_metrics()
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(body.decode())
        for s in family.samples
    }


def test_cycle_durations_are_a_histogram_by_outcome() -> None:
    metrics.record_cycle("succeeded", 42.0)
    metrics.record_cycle("succeeded", 5.0)
    metrics.record_cycle("failed", 700.0)

    after = _samples()
    ok = frozenset({("outcome", "succeeded")})
    assert after[("mlpipe_cycle_seconds_count", ok)] == 2
    assert after[("mlpipe_cycle_seconds_sum", ok)] == pytest.approx(47.0)
    assert after[("mlpipe_cycle_seconds_bucket", ok | {("le", "10.0")})] == 1
    assert after[("mlpipe_cycle_seconds_bucket", ok | {("le", "60.0")})] == 2
    failed = frozenset({("outcome", "failed")})
    assert after[("mlpipe_cycle_seconds_bucket", failed | {("le", "600.0")})] == 0
    assert after[("mlpipe_cycle_seconds_bucket", failed | {("le", "1200.0")})] == 1
    assert after[("mlpipe_cycles_total", failed)] == 1
