"""Prometheus metrics of the service and the helpers that record them (`app.api.metrics` times requests).

One process (the default): samples live in prometheus_client's default registry and `GET /metrics` shows
them. Several API processes (`uvicorn --workers N`, gunicorn): set `PROMETHEUS_MULTIPROC_DIR` to an empty
directory that every process can write, before they start (empty it on each deploy); each process then
writes its samples there and `/metrics` sums them over processes. Have the process manager call
`prometheus_client.multiprocess.mark_process_dead(pid)` when a worker process exits (gunicorn `child_exit`),
so the live gauges forget it.

Cycle outcomes are counted in Redis, not in memory: cycles finish in RQ workers (other processes, other
machines, forked work-horses that exit after each job), and every API process reads the same counts.

Nothing here imports FastAPI, so services and workers record events cheaply.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector
from redis.exceptions import RedisError

from app.core.config import get_settings
from app.core.logging import get_logger

log = get_logger(__name__)

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

HTTP_REQUEST_SECONDS = Histogram(
    "mlpipe_http_request_seconds",
    "Time to answer an HTTP request, by method, route template and status code.",
    ["method", "route", "status"],
    buckets=_LATENCY_BUCKETS,
)
PREDICTIONS = Counter(
    "mlpipe_predictions", "Predictions served, by model name and kind.", ["model", "kind"]
)
PREDICTION_SECONDS = Histogram(
    "mlpipe_prediction_seconds",
    "Time spent computing one prediction (features and model call), by model name.",
    ["model"],
    buckets=_LATENCY_BUCKETS,
)
MODEL_LOADS = Counter("mlpipe_model_loads", "Models loaded from the store into memory.", ["model"])
MODEL_RELOADS = Counter(
    "mlpipe_model_reloads", "Reloads of the in-memory model cache, by what triggered them.", ["reason"]
)
PREDICTION_LOG_DROPPED = Counter(
    "mlpipe_prediction_log_dropped",
    "Served predictions that could not be logged (so will never be scored), by reason: queue_full "
    "(Redis slow or down for longer than the in-memory buffer lasts) or shutdown.",
    ["reason"],
)
TUNING_STARTS_LOST = Counter(
    "mlpipe_tuning_starts_lost",
    "Tuning studies that could not be started after their request was checked, by trigger (api, cli, cycle) "
    "and reason: redis (the queue of trial jobs does not answer), database, or other. Nothing of them is "
    "left behind (no study row, no Optuna study).",
    ["trigger", "reason"],
)
MODELS_LOADED = Gauge(
    "mlpipe_models_loaded", "Models held in memory by the API process.", multiprocess_mode="livemax"
)
CYCLE_SECONDS_BUCKETS = (10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1200.0, 1800.0, 3600.0, 7200.0)


def observe_prediction(model: str, kind: str, seconds: float) -> None:
    """Count one served prediction and its compute time (call once per answered prediction)."""
    PREDICTIONS.labels(model=model, kind=kind).inc()
    PREDICTION_SECONDS.labels(model=model).observe(seconds)


def record_prediction_log_drop(reason: str, count: int = 1) -> None:
    PREDICTION_LOG_DROPPED.labels(reason=reason).inc(count)


def record_model_load(model: str) -> None:
    MODEL_LOADS.labels(model=model).inc()


def record_tuning_start_lost(trigger: str, reason: str) -> None:
    TUNING_STARTS_LOST.labels(trigger=trigger, reason=reason).inc()


def record_reload(reason: str) -> None:
    """`reason`: a small fixed vocabulary (e.g. startup, promotion, status_change, manual)."""
    MODEL_RELOADS.labels(reason=reason).inc()


def set_models_loaded(count: int) -> None:
    MODELS_LOADED.set(count)


def _cycles_key() -> str:
    return f"{get_settings().queue_prefix}:metrics:cycles"


def _cycle_seconds_key() -> str:
    return f"{get_settings().queue_prefix}:metrics:cycle_seconds"


def record_cycle(outcome: str, seconds: float | None = None) -> None:
    """Count a finished cycle (e.g. succeeded, partial, failed) and its duration in Redis, where every
    process sees them: the histogram's buckets are hash fields `<outcome>|<le>`, plus `|sum` and `|count`.

    A metric must never break a cycle, so a Redis failure is logged and dropped.
    """
    from app.core.redis import get_redis

    try:
        pipe = get_redis().pipeline()
        pipe.hincrby(_cycles_key(), outcome, 1)
        if seconds is not None:
            key = _cycle_seconds_key()
            for le in (*CYCLE_SECONDS_BUCKETS, "+Inf"):
                if le == "+Inf" or seconds <= le:
                    pipe.hincrby(key, f"{outcome}|{le}", 1)
            pipe.hincrbyfloat(key, f"{outcome}|sum", float(seconds))
        pipe.execute()
    except RedisError as exc:
        log.warning("cycle_metric_not_recorded", outcome=outcome, error=str(exc))
        return
    CycleOutcomes.forget()  # this process's next scrape shows its own write


class CycleOutcomes(Collector):
    """`mlpipe_cycles_total{outcome}` and `mlpipe_cycle_seconds{outcome}`, read from Redis at scrape time."""

    def _families(self) -> tuple[CounterMetricFamily, HistogramMetricFamily]:
        return (
            CounterMetricFamily("mlpipe_cycles", "Cycles finished, by outcome.", labels=["outcome"]),
            HistogramMetricFamily(
                "mlpipe_cycle_seconds", "Wall time of finished cycles, by outcome.", labels=["outcome"]
            ),
        )

    def describe(self) -> Iterable[Metric]:
        return list(self._families())

    # (when, read ok, (outcome counts, duration histogram fields))
    _last: tuple[float, bool, tuple[dict[bytes, bytes], dict[bytes, bytes]]] = (0.0, True, ({}, {}))

    @classmethod
    def forget(cls) -> None:
        cls._last = (0.0, True, cls._last[2])

    def _counts(self) -> tuple[dict[bytes, bytes], dict[bytes, bytes]]:
        """Read at most once a second, and not again for 5 s after Redis failed to answer (scrapes stay
        fast while it hangs; the last counts read are served meanwhile)."""
        from app.core.redis import get_redis

        when, ok, read = CycleOutcomes._last
        if time.monotonic() - when < (1.0 if ok else 5.0):
            return read
        try:
            pipe = get_redis().pipeline()
            pipe.hgetall(_cycles_key())
            pipe.hgetall(_cycle_seconds_key())
            counts, seconds = pipe.execute()
            read = (counts, seconds)
            CycleOutcomes._last = (time.monotonic(), True, read)
        except RedisError as exc:
            log.warning("cycle_metric_unreadable", error=str(exc))
            CycleOutcomes._last = (time.monotonic(), False, read)
        return read

    def collect(self) -> Iterable[Metric]:
        outcomes, durations = self._families()
        counts, seconds = self._counts()
        for outcome, value in sorted(counts.items()):
            outcomes.add_metric([outcome.decode()], float(value))
        by_outcome: dict[str, dict[str, float]] = {}
        for field, value in seconds.items():
            outcome, _, le = field.decode().rpartition("|")
            by_outcome.setdefault(outcome, {})[le] = float(value)
        for outcome, fields in sorted(by_outcome.items()):
            buckets = [(str(le), fields.get(str(le), 0.0)) for le in CYCLE_SECONDS_BUCKETS]
            buckets.append(("+Inf", fields.get("+Inf", 0.0)))
            durations.add_metric([outcome], buckets, fields.get("sum", 0.0))
        return [outcomes, durations]


_cycle_outcomes = CycleOutcomes()
REGISTRY.register(_cycle_outcomes)


def multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or os.environ.get("prometheus_multiproc_dir")


def prepare_multiprocess_dir() -> str:
    """Before several API processes start: PROMETHEUS_MULTIPROC_DIR (a fresh temporary directory unless
    set), emptied of earlier runs' samples, in the environment the processes inherit."""
    import glob
    import tempfile

    path = multiprocess_dir() or tempfile.mkdtemp(prefix="mlpipe-metrics-")
    os.makedirs(path, exist_ok=True)
    for stale in glob.glob(os.path.join(path, "*.db")):
        os.remove(stale)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = path
    return path


def process_exiting() -> None:
    """An API process stops: its live gauges leave the multiprocess sum (what gunicorn's child_exit does)."""
    if multiprocess_dir():
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(os.getpid())


def render_metrics(accept: str | None = None) -> tuple[bytes, str]:
    """The exposition body and its content type (Prometheus text unless the scraper asks for OpenMetrics)."""
    registry: CollectorRegistry = REGISTRY
    if multiprocess_dir():
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        registry.register(_cycle_outcomes)
    encoder, content_type = choose_encoder(accept or "")
    return encoder(registry), content_type
