"""The in-memory prediction log is bounded: while Redis hangs it keeps what fits, drops and counts the rest,
and delivers what it kept once Redis answers again."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import pytest
from prometheus_client import REGISTRY

from app.core.config import get_settings, reset_settings
from app.core.metrics import render_metrics
from app.core.redis import get_redis, reset_redis
from app.services.prediction_log import PredictionLog, log_key
from tests.faults.netfaults import HungServer


def _dropped(reason: str) -> float:
    return REGISTRY.get_sample_value("mlpipe_prediction_log_dropped_total", {"reason": reason}) or 0.0


def _use_redis(monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    monkeypatch.setenv("REDIS_URL", url)
    reset_settings()
    reset_redis()


@pytest.fixture()
def real_redis_url(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    url = get_settings().redis_url
    assert url
    yield url
    _use_redis(monkeypatch, url)


def test_while_redis_hangs_the_log_keeps_what_fits_counts_the_rest_and_delivers_later(
    real_redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    hung = HungServer()
    _use_redis(monkeypatch, f"redis://127.0.0.1:{hung.port}/0")
    log = PredictionLog(capacity=40)
    before = _dropped("queue_full")
    started = time.perf_counter()
    ids = [uuid.uuid4().hex for _ in range(100)]
    for request_id in ids:
        log.put({"request_id": request_id})
    put_seconds = time.perf_counter() - started
    time.sleep(1.5)  # the flusher tries the hung Redis (about a second) and puts its batch back

    assert put_seconds < 0.1, f"put waited on the hung Redis ({put_seconds:.2f} s for 100 entries)"
    kept = len(log)
    assert kept == 40
    assert _dropped("queue_full") - before == 100 - kept
    assert 'mlpipe_prediction_log_dropped_total{reason="queue_full"}' in render_metrics()[0].decode()

    _use_redis(monkeypatch, real_redis_url)
    hung.close()
    deadline = time.monotonic() + 10
    while len(log) and time.monotonic() < deadline:
        time.sleep(0.1)
    log.stop()
    assert len(log) == 0
    assert get_redis().llen(log_key()) == kept  # every kept entry reached Redis, once
