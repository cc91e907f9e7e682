"""`mlpipe train`, `backtest` and `models` on a small simulated candle store."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from app.cli import app
from app.data.candles import store_candles
from app.data.simulator import MarketSimulator
from app.services.models import get_model, list_models

START_TS = 1_767_225_600_000  # 2026-01-01 UTC
SYMBOLS = ["BTC-USDT", "ETH-USDT"]
SMALL_XGB = json.dumps({"n_estimators": 15, "max_depth": 3})
runner = CliRunner()


@pytest.fixture(scope="module")
def simulated() -> dict:
    return MarketSimulator(5).generate(SYMBOLS, START_TS, 1400)


@pytest.fixture()
def candle_store(simulated: dict, store_dir: Path) -> Path:
    for symbol, frame in simulated.items():
        store_candles(symbol, frame, "simulated")
    return store_dir


def _run(*args: str):
    return runner.invoke(app, list(args), env={"COLUMNS": "200"})


def _train_direction() -> str:
    result = _run("train", "--kind", "direction", "--symbols", ",".join(SYMBOLS), "--timeframe", "1m",
                  "--lookback-bars", "900", "--horizon", "3", "--config", SMALL_XGB)
    assert result.exit_code == 0, result.output
    return result.output


def test_train_saves_a_candidate_and_prints_it_beside_its_baselines(candle_store: Path) -> None:
    output = _train_direction()
    [record] = list_models()
    assert record.kind == "direction" and record.status == "candidate" and record.name in output
    assert (candle_store / record.store_dir / "model.json").is_file()
    assert record.hyperparams["n_estimators"] == 15 and record.training["horizon"] == 3
    assert record.training["symbols"] == SYMBOLS
    assert "baseline: majority" in output and "baseline: last_move" in output
    assert f"{record.performance['accuracy']:.4f}" in output
    perf = record.performance
    assert f"{perf['skill']:.4f} [{perf['skill_interval'][0]:.4f}, {perf['skill_interval'][1]:.4f}]" in output
    assert ("does not beat its baseline" in output) is not perf["beats_baseline"]
    assert f"effective n {perf['n_effective']}" in output and "log_loss" in output and "brier" in output
    assert "walk-forward: 4 expanding folds" in output
    assert "stated confidence vs observed" in output and "trading backtest" in output


def test_train_regressor_prints_rmse_against_its_baselines(candle_store: Path) -> None:
    result = _run("train", "--kind", "volatility", "--symbols", "BTC-USDT", "--lookback-bars", "1000",
                  "--config", json.dumps({"max_iter": 15}))
    assert result.exit_code == 0, result.output
    [record] = list_models(kind="volatility")
    assert "baseline: har_rv" in result.output and "qlike" in result.output
    assert f"{record.performance['rmse']:.6f}" in result.output
    assert "coverage" in result.output and "trading backtest" not in result.output


def test_backtest_prints_metrics_baselines_reliability_and_trading(candle_store: Path) -> None:
    _train_direction()
    name = list_models()[0].name
    result = _run("backtest", name, "--days", "1", "--fee-bps", "5")
    assert result.exit_code == 0, result.output
    assert f"{name}: backtest" in result.output and "baseline: majority" in result.output
    assert "skill over the strongest baseline (base_rate" in result.output
    assert "fees 5.0 bps" in result.output and "buy and hold" in result.output


def test_models_lists_and_filters(candle_store: Path) -> None:
    _train_direction()
    name = list_models()[0].name
    listed = _run("models")
    assert listed.exit_code == 0 and name in listed.output and "candidate" in listed.output
    assert f"{get_model(name).score:.1f}" in listed.output
    assert name not in _run("models", "--kind", "risk").output
    as_json = json.loads(_run("models", "--status", "candidate", "--json").output)
    assert [row["name"] for row in as_json] == [name]
    assert as_json[0]["skill_interval"] == get_model(name).performance["skill_interval"]
    assert as_json[0]["beats_baseline"] in (True, False) and "beats" in listed.output


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (("backtest", "direction_predictor_404"), 1, "no model named 'direction_predictor_404'"),
        (("train", "--kind", "direction", "--symbols", "BTC"), 2, "not of the form BASE-QUOTE"),
        (("train", "--kind", "risk", "--config", '{"depth": 3}'), 2, "has no parameters ['depth']"),
        (("train", "--kind", "risk", "--config", "{oops"), 2, "--config is not valid JSON"),
        (("train", "--kind", "risk", "--symbols", "SOL-USDT"), 1, "no 1m candles stored for 'SOL-USDT'"),
        (("train", "--kind", "weather"), 2, "Invalid value"),
    ],
)
def test_errors_are_one_clear_line_and_a_nonzero_exit(
    store_dir: Path, args: tuple[str, ...], code: int, message: str
) -> None:
    result = _run(*args)
    assert result.exit_code == code, result.output
    assert message in result.output
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert list_models() == []
