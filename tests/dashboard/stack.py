"""A real service with real history for the dashboard's browser tests: the API under uvicorn on loopback, a
real RQ worker process, and two real cycles on simulated candles with served, logged and scored
predictions in between (so the second cycle's drift check scores the first one's models on hours they
never saw, with feature PSI).

    with dashboard_stack(tmp_dir) as stack:   # stack.url, stack.keys["operator"], stack.worker ...

The worker is a subprocess (`mlpipe worker`) on the same database, Redis and model store as the test
process; it shares the history's cycles with a burst worker in this process (which starts at once), and
runs whatever the browser starts (a forced cycle). Predictions are
logged, drained and scored by the same service calls the cron jobs make.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml

from app.core.config import reset_settings
from app.services import keys
from app.services.cycle import get_cycle, start_cycle
from app.services.prediction_log import drain_predictions, get_prediction_log, score_predictions
from app.store.cache import get_cache, reset_cache
from tests.api.server import serve
from tests.cycle.helpers import SYMBOLS, extend_candles, one_per_kind, run_workers, seed_candles

ROOT = Path(__file__).resolve().parents[2]
KINDS = ("direction", "risk", "price", "momentum", "volatility")
FINISHED = ("succeeded", "partial", "failed", "interrupted")


@dataclass
class Stack:
    url: str
    keys: dict[str, str]
    cycles: list[str]
    worker: subprocess.Popen
    env: dict[str, str] = field(default_factory=dict)
    log: Path | None = None


def _models_file(directory: Path) -> Path:
    path = directory / "models.yaml"
    path.write_text(yaml.safe_dump({"defaults": {"window_days": 2}, "models_to_train": one_per_kind()}))
    return path


def _cycle(worker: subprocess.Popen, log: Path) -> str:
    """A cycle as the scheduler would start it, run to its end by a burst worker in this process and the
    worker process together (whichever takes each job)."""
    cycle = start_cycle("operator", {})
    run_workers()

    def finished() -> bool:
        if worker.poll() is not None:
            raise AssertionError(f"the worker process ended; its log:\n{log.read_text()[-3000:]}")
        return get_cycle(cycle.id).status in FINISHED

    wait_for(finished, 120, f"cycle {cycle.id} to finish")
    done = get_cycle(cycle.id)
    assert done.status == "succeeded", done.errors
    return cycle.id


def _predict(url: str, key: str, rounds: int) -> int:
    served = 0
    with httpx.Client(base_url=url, headers={"X-API-Key": key}, timeout=30) as http:
        for n in range(rounds):
            for kind in KINDS:
                answer = http.post(f"/predict/{kind}", json={"symbol": SYMBOLS[n % len(SYMBOLS)]})
                assert answer.status_code == 200, answer.text
                served += 1
    get_prediction_log().flush()
    return served


def _start_worker(env: dict[str, str], log: Path) -> subprocess.Popen:
    mlpipe = Path(sys.executable).parent / "mlpipe"
    command = [str(mlpipe)] if mlpipe.exists() else [sys.executable, "-c", "from app.cli import main; main()"]
    with log.open("ab") as out:
        return subprocess.Popen(
            [*command, "worker"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def _stop(worker: subprocess.Popen) -> None:
    if worker.poll() is None:
        os.killpg(worker.pid, signal.SIGTERM)  # a warm shutdown: the running job finishes
        try:
            worker.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait(timeout=10)


@contextmanager
def dashboard_stack(directory: Path, log_level: str = "INFO") -> Iterator[Stack]:
    """The service, two cycles of history, predictions served and scored, and a worker for what comes."""
    saved = {k: os.environ.get(k) for k in ("MARKET_DATA_SOURCE", "CYCLE_MODELS_FILE", "LOG_LEVEL")}
    os.environ.update(
        MARKET_DATA_SOURCE="csv", CYCLE_MODELS_FILE=str(_models_file(directory)), LOG_LEVEL=log_level
    )
    reset_settings()
    reset_cache()
    made = {role: keys.create_key(role, name=f"dashboard-test-{role}") for role in ("predict", "operator")}
    log = directory / "worker.log"
    worker: subprocess.Popen | None = _start_worker({**os.environ}, log)
    try:
        with serve() as url:
            history = seed_candles(days=2)
            first = _cycle(worker, log)
            get_cache().reload("test")
            _predict(url, made["predict"], rounds=4)
            extend_candles(history, 0.25)  # six more hours: the predictions' outcomes, unseen hours for drift
            drain_predictions()
            score_predictions()
            second = _cycle(worker, log)
            get_cache().reload("test")
            _predict(url, made["predict"], rounds=2)
            drain_predictions()
            yield Stack(url=url, keys=made, cycles=[first, second], worker=worker, log=log)
    finally:
        if worker is not None:
            _stop(worker)
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        reset_settings()
        reset_cache()


def wait_for(predicate: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")
