"""`mlpipe cycle`: --wait follows a real worker to the end, --show prints one, a second one is refused."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from click.testing import Result
from sqlmodel import select
from typer.testing import CliRunner

from app.cli import app
from app.core.config import reset_settings
from app.core.db import session_scope
from app.services.cycle import get_cycle, list_cycles, start_cycle
from app.services.cycle import lock as cycle_lock
from app.tables.models import ModelRecord
from tests.cycle.helpers import definition, run_workers, seed_candles

runner = CliRunner()
SYMBOL = "BTC-USDT"
NAMES = ("cli_direction", "cli_volatility")


@pytest.fixture(autouse=True)
def tiny_models(store_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """One day of candles and a models file of two small definitions in place of config/models.yaml."""
    monkeypatch.setenv("MARKET_DATA_SOURCE", "csv")  # the catch-up does nothing: the test owns the candles
    monkeypatch.setenv("SYMBOLS", SYMBOL)
    reset_settings()
    seed_candles(days=1, symbols=[SYMBOL])
    path = store_dir.parent / "models.yaml"
    definitions = [definition("xgboost", NAMES[0]), definition("gradient_boosting", NAMES[1])]
    path.write_text(yaml.safe_dump({"defaults": {"window_days": 1}, "models_to_train": definitions}))
    monkeypatch.setattr("app.services.cycle.definitions.DEFAULT_FILE", path)
    yield path
    reset_settings()


def _run(*args: str) -> Result:
    return runner.invoke(app, list(args), env={"COLUMNS": "200"})


def _wait_for_lock(timeout: float = 30) -> str:
    """The id of the cycle the CLI queued, once its lock is taken and its row is committed."""
    deadline = time.monotonic() + timeout
    while (holder := cycle_lock.holder()) is None or holder not in {c.id for c in list_cycles()}:
        assert time.monotonic() < deadline, "`mlpipe cycle --wait` never queued a cycle"
        time.sleep(0.05)
    return holder


def test_cycle_wait_follows_a_real_worker_and_ends_with_the_final_status() -> None:
    outcome: dict[str, Result] = {}
    cli = threading.Thread(target=lambda: outcome.setdefault("result", _run("cycle", "--wait")))
    cli.start()
    try:
        cycle_id = _wait_for_lock()
        assert get_cycle(cycle_id).status == "queued"
        run_workers()  # a real RQ worker, started once the cycle is queued, until every job ran
    finally:
        cli.join(timeout=60)
    assert not cli.is_alive(), "`mlpipe cycle --wait` did not notice the end of its cycle"
    result = outcome["result"]
    assert result.exit_code == 0, result.output

    done = get_cycle(cycle_id)
    assert done.status == "succeeded", done.errors
    out = result.stdout
    assert f"cycle {cycle_id} queued" in out
    assert f"status {done.status}" in out and "stage done" in out
    with session_scope() as session:
        built = {r.family: r.name for r in session.exec(select(ModelRecord)).all()}
    for name in NAMES:  # one progress row per model definition, with the model it produced
        [row] = [line for line in out.splitlines() if f" {name} " in f" {line} "]
        assert "succeeded" in row and built[name] in row


def test_cycle_show_prints_one_cycle_by_id_and_an_unknown_id_points_to_the_list() -> None:
    cycle = start_cycle("operator", {"window_days": 1})
    run_workers()

    result = _run("cycle", "--show", cycle.id)
    assert result.exit_code == 0, result.output
    assert cycle.id[:12] in result.stdout and "status succeeded" in result.stdout
    for name in NAMES:
        assert name in result.stdout
    assert len(list_cycles()) == 1, "--show must not start a cycle"

    missing = _run("cycle", "--show", "no-such-cycle")
    assert missing.exit_code == 1
    assert "no cycle 'no-such-cycle'" in missing.stdout and "mlpipe cycle --list" in missing.stdout

    listed = _run("cycle", "--list")  # the command the error points to exists and lists the cycles
    assert listed.exit_code == 0, listed.output
    [row] = [line for line in listed.stdout.splitlines() if cycle.id in line]
    assert "succeeded" in row and "2/2" in row
    assert len(list_cycles()) == 1, "--list must not start a cycle"


def test_cycle_while_another_runs_prints_the_running_id_and_exits_non_zero() -> None:
    running = start_cycle("operator", {"window_days": 1})  # queued, holding the lock: no worker yet

    result = _run("cycle")

    assert result.exit_code != 0
    assert running.id in result.stdout and "still running" in result.stdout
    assert [c.id for c in list_cycles()] == [running.id], "no second cycle may be created"
    assert cycle_lock.holder() == running.id


def test_cycle_wait_while_another_runs_follows_the_running_cycle_to_its_end(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import app.cli.cycle as cli_cycle

    running = start_cycle("operator", {"window_days": 1})  # queued and holding the lock
    following = threading.Event()
    follow = cli_cycle._follow

    def noted_follow(*args: object) -> dict:
        following.set()
        return follow(*args)

    monkeypatch.setattr(cli_cycle, "_follow", noted_follow)
    outcome: dict[str, Result] = {}
    cli = threading.Thread(target=lambda: outcome.setdefault("result", _run("cycle", "--wait")))
    cli.start()
    try:
        assert following.wait(30), "`mlpipe cycle --wait` never started following"
        assert get_cycle(running.id).status == "queued", "the worker must start only once the CLI follows"
        run_workers()
    finally:
        cli.join(timeout=60)
    assert not cli.is_alive(), "`mlpipe cycle --wait` did not notice the end of the running cycle"
    result = outcome["result"]
    assert result.exit_code == 0, result.output
    assert f"cycle {running.id} is already running; following it" in result.stdout
    assert "status succeeded" in result.stdout and "stage done" in result.stdout
    assert [c.id for c in list_cycles()] == [running.id], "following must not start a second cycle"
