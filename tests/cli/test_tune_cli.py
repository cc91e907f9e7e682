"""`mlpipe tune`: a broken search space in the models file is a CLI error naming it; a small study runs on
a burst worker the command starts, with its progress bar, and ends with its result."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tests.tuning.helpers import BAD_START, SPACE, SYMBOLS, seed

MLPIPE = Path(sys.executable).with_name("mlpipe")


def _models_file(tmp_path: Path, space: dict) -> Path:
    path = tmp_path / "models.yaml"
    path.write_text(yaml.safe_dump({"defaults": {"window_days": 2}, "search_spaces": {"xgboost": space},
                                    "models_to_train": [BAD_START]}))
    return path


def _tune(path: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "CYCLE_MODELS_FILE": str(path), "SYMBOLS": ",".join(SYMBOLS), "TUNING_FOLDS": "3",
           "COLUMNS": "160"}
    return subprocess.run([str(MLPIPE), "tune", "--definition", BAD_START["name"], *args], env=env,
                          capture_output=True, text=True, timeout=240)


def test_a_broken_search_space_is_a_cli_error_naming_it(tmp_path: Path) -> None:
    seed(0.3)
    path = _models_file(tmp_path, {"params": {"max_depth": {"low": 9, "high": 3}}})
    done = _tune(path, "--no-wait")
    assert done.returncode == 1
    assert "search_spaces.xgboost: parameter 'max_depth': low (9) is above high (3)" in done.stdout
    assert "Traceback" not in done.stdout + done.stderr


@pytest.mark.slow
def test_a_small_study_runs_on_a_worker_it_starts_and_prints_its_result(tmp_path: Path) -> None:
    seed(2.1, ar1=0.3)
    done = _tune(_models_file(tmp_path, SPACE), "--trials", "3", "--minutes", "2", "--workers", "1")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "best so far" in done.stdout and "paired test" in done.stdout
    assert "decision" in done.stdout and "3 {" in done.stdout  # trials tried, with their states
    assert "still running" not in done.stdout  # the worker left by itself once the queue was empty
    assert "Traceback" not in done.stdout + done.stderr


def test_a_worker_slow_to_exit_is_stopped_after_a_bounded_wait_without_a_traceback() -> None:
    from app.cli.tune import _reap

    quick = subprocess.Popen([sys.executable, "-c", "pass"])
    slow = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    started = time.monotonic()
    _reap([quick, slow], grace=1.0)
    assert time.monotonic() - started < 10
    assert quick.returncode == 0 and slow.returncode == -signal.SIGTERM
