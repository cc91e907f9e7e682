"""`mlpipe train`, `backtest`, `models`: build a model, judge it against its baselines, list them."""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from app.cli import app
from app.cli.console import clear_errors, make_console
from app.core.errors import BadInput


class Kind(StrEnum):
    direction = "direction"
    risk = "risk"
    price = "price"
    momentum = "momentum"
    volatility = "volatility"


class Status(StrEnum):
    candidate = "candidate"
    active = "active"
    archived = "archived"
    superseded = "superseded"
    failed = "failed"


@app.command("train")
def train_command(
    kind: Kind = typer.Option(..., "--kind", help="what to predict"),
    symbols: str = typer.Option(None, "--symbols", help="e.g. BTC-USDT,ETH-USDT (default: SYMBOLS)"),
    timeframe: str = typer.Option("1m", "--timeframe", help="bar size: 1m, 5m, 15m, 1h, 4h"),
    lookback_bars: int = typer.Option(None, "--lookback-bars", min=1, help="bars of history (7 days)"),
    horizon: int = typer.Option(None, "--horizon", min=1, help="bars ahead (default: the kind's)"),
    config: str = typer.Option(None, "--config", help="estimator hyperparameters as JSON object"),
    name: str = typer.Option(None, "--name", help="family or full name (default: the kind's class name)"),
) -> None:
    """Train a model on stored candles, save it as a candidate and show it beside its naive baselines."""
    from app.core.config import get_settings
    from app.ml.training import model_from_definition
    from app.services.ingest import normalize_symbols
    from app.services.models import save_model

    console = make_console()
    with clear_errors(console, "training"):
        names = normalize_symbols(symbols) if symbols else get_settings().symbols
        definition: dict[str, Any] = {"kind": kind.value, "timeframe": timeframe, "horizon": horizon,
                                      "config": _parse_config(config)}
        model = model_from_definition(definition)
        with console.status(f"training {kind.value} on {', '.join(names)} ({timeframe})..."):
            model.train(names, timeframe=timeframe, lookback_bars=lookback_bars, prediction_horizon=horizon)
        record = save_model(model, name=name)
    console.print(
        f"saved [bold]{record.name}[/bold] ({record.kind}, {record.model_type}) as {record.status} in "
        f"{record.store_dir}; trained on {model.training_.get('data_points')} rows, "
        f"{model.training_.get('train_start')} to {model.training_.get('train_end')}"
    )
    print_report(console, f"{record.name}: holdout", model.performance_, model.is_classifier)


@app.command("backtest")
def backtest_command(
    name: str = typer.Argument(..., help="a stored model's name, e.g. direction_predictor_001"),
    days: float = typer.Option(7.0, "--days", min=0.01, help="newest days of candles to test on"),
    symbols: str = typer.Option(None, "--symbols", help="default: the symbols it was trained on"),
    fee_bps: float = typer.Option(10.0, "--fee-bps", min=0.0, help="direction: fee per unit traded (bps)"),
    slippage_bps: float = typer.Option(2.0, "--slippage-bps", min=0.0, help="direction: slippage (bps)"),
) -> None:
    """Test a stored model on the newest candles it never trained on, beside its naive baselines."""
    from app.ml.validation import ValidationPipeline
    from app.services.ingest import normalize_symbols
    from app.services.models import load_model

    console = make_console()
    with clear_errors(console, "backtest"):
        model = load_model(name)
        chosen = normalize_symbols(symbols) if symbols else None
        with console.status(f"backtesting {name} on the last {days:g} days..."):
            result = ValidationPipeline(fee_bps=fee_bps, slippage_bps=slippage_bps).backtest_model(
                model, symbols=chosen, days_back=days
            )
    print_report(console, f"{name}: backtest", result, model.is_classifier)


_STATUS_ORDER = {"active": 0, "candidate": 1, "superseded": 2, "archived": 3, "failed": 4}


def _leaderboard_order(record: Any) -> tuple[int, float]:
    score = record.score if record.score is not None else float("-inf")
    return _STATUS_ORDER.get(record.status, 9), -score


@app.command("models")
def models_command(
    status: Status = typer.Option(None, "--status", help="only this status"),
    kind: Kind = typer.Option(None, "--kind", help="only this kind"),
    as_json: bool = typer.Option(False, "--json", help="print JSON instead of a table"),
) -> None:
    """The leaderboard: models by status and score, with skill over the best baseline and live accuracy."""
    from app.services.models import list_models

    console = make_console()
    with clear_errors(console, "listing"):
        records = list_models(status=status.value if status else None, kind=kind.value if kind else None)
    if as_json:
        rows = [{"name": r.name, "kind": r.kind, "type": r.model_type, "status": r.status, "score": r.score,
                 "skill": r.performance.get("skill"), "skill_interval": r.performance.get("skill_interval"),
                 "beats_baseline": r.performance.get("beats_baseline"),
                 "n_effective": r.performance.get("n_effective"), "baseline": r.performance.get("baseline"),
                 "walk_forward_mean_skill": (r.performance.get("walk_forward") or {}).get("mean_skill"),
                 "created_ts": r.created_ts.isoformat(), "live_performance": r.live_performance}
                for r in records]
        typer.echo(json.dumps(rows, indent=2))
        return
    if not records:
        scope = "" if status is None and kind is None else " with that filter"
        console.print(f"no models stored yet{scope}; train one with `mlpipe train --kind direction`")
        return
    records = sorted(records, key=_leaderboard_order)
    table = Table(title=f"leaderboard ({len(records)} models); beats = lower end of the 95% skill "
                        "interval above 0")
    columns = ("name", "kind", "type", "status", "score", "skill [95%]", "beats", "vs baseline",
               "folds", "created (UTC)", "live acc (n)")
    for column in columns:
        right = column in ("score", "skill [95%]", "folds", "live acc (n)")
        table.add_column(column, justify="right" if right else "left", no_wrap=True)
    for r in records:
        live = r.live_performance or {}
        live_text = (f"{_num(live.get('accuracy'), 3)} ({live.get('trades_evaluated', 0)})"
                     if live.get("trades_evaluated") else "-")
        perf = r.performance or {}
        table.add_row(r.name, r.kind, r.model_type, r.status, _num(r.score, 1),
                      _with_interval(perf.get("skill"), perf.get("skill_interval"), 3), _beats(perf),
                      str(perf.get("baseline") or "-"),
                      _num((perf.get("walk_forward") or {}).get("mean_skill"), 3),
                      f"{r.created_ts:%Y-%m-%d %H:%M}", live_text)
    console.print(table)


def _parse_config(config: str | None) -> dict[str, Any]:
    if not config:
        return {}
    try:
        value = json.loads(config)
    except json.JSONDecodeError as exc:
        raise BadInput(f"--config is not valid JSON ({exc.msg}); e.g. '{{\"max_depth\": 4}}'") from None
    if not isinstance(value, dict):
        raise BadInput("--config must be a JSON object of hyperparameters, e.g. '{\"max_depth\": 4}'")
    return value


def _num(value: Any, digits: int = 4) -> str:
    return "-" if value is None else f"{value:.{digits}f}" if isinstance(value, float | int) else str(value)


def _pct(value: Any) -> str:
    return "-" if value is None else f"{100 * value:.2f}%"


def _with_interval(value: Any, interval: Any, digits: int = 4) -> str:
    if value is None:
        return "-"
    if not interval or None in interval:
        return _num(value, digits)
    return f"{_num(value, digits)} [{_num(interval[0], digits)}, {_num(interval[1], digits)}]"


def _beats(perf: dict[str, Any]) -> str:
    if perf.get("beats_baseline") is None:
        return "-"
    return "[green]yes[/green]" if perf["beats_baseline"] else "[yellow]no[/yellow]"


def print_report(console: Console, title: str, perf: dict[str, Any], is_classifier: bool) -> None:
    """Model beside each naive baseline with 95% intervals, then the skill verdict, walk-forward folds,
    confidence reliability and (direction) trading."""
    console.print(_metrics_table(title, perf, is_classifier))
    best = perf.get("baseline")
    score = "Brier" if is_classifier else "RMSE"
    figure = perf.get("baseline_brier") if is_classifier else perf.get("baseline_rmse")
    verdict = ("[green]beats its baseline[/green]" if perf.get("beats_baseline")
               else "[yellow]does not beat its baseline[/yellow] (the interval reaches 0 or below)")
    console.print(
        f"skill over the strongest baseline ({best}, {score} {_num(figure, 6)}): [bold]"
        f"{_with_interval(perf.get('skill'), perf.get('skill_interval'))}[/bold] 95% interval: {verdict}. "
        f"Score {_num(perf.get('score'), 1)}; 0 = no better than the baseline."
    )
    if is_classifier:
        spread = (perf.get("intervals") or {}).get("accuracy_skill")
        accuracy_skill = _with_interval(perf.get("accuracy_skill"), spread)
        console.print(f"accuracy skill over {perf.get('accuracy_baseline')} (accuracy "
                      f"{_num(perf.get('baseline_accuracy'))}): {accuracy_skill}")
    console.print(
        f"on {perf.get('n')} rows ({perf.get('n_times')} candle times, effective n "
        f"{perf.get('n_effective')}, bootstrap blocks of {perf.get('block_bars')} bars), {perf.get('start')} "
        f"to {perf.get('end')}"
    )
    folds = perf.get("walk_forward") or {}
    if folds.get("folds"):
        console.print(_folds_table(folds))
    stated = perf.get("reliability") if is_classifier else perf.get("coverage")
    if stated and stated.get("bins"):
        console.print(_reliability_table(stated, is_classifier))
    if perf.get("trading"):
        console.print(_trading_table(perf["trading"]))


def _metrics_table(title: str, perf: dict[str, Any], is_classifier: bool) -> Table:
    baselines: dict[str, Any] = perf.get("baselines") or {}
    intervals: dict[str, Any] = perf.get("intervals") or {}
    table = Table(title=f"{title} (95% block-bootstrap intervals)")
    table.add_column("metric")
    table.add_column("model [95%]", justify="right", style="bold")
    if is_classifier:
        scores: dict[str, Any] = perf.get("baseline_scores") or {
            n: {"accuracy": v} for n, v in baselines.items()
        }
        for name in scores:
            table.add_column(f"baseline: {name}" + (" (best)" if name == perf.get("baseline") else ""),
                             justify="right")
        for metric in ("accuracy", "log_loss", "brier"):
            table.add_row(metric, _with_interval(perf.get(metric), intervals.get(metric)),
                          *(_num((v or {}).get(metric)) for v in scores.values()))
        for metric in ("precision", "recall", "f1", "roc_auc", "brier_skill"):
            table.add_row(metric, _with_interval(perf.get(metric), intervals.get(metric)),
                          *("" for _ in scores))
    else:
        for name in baselines:
            table.add_column(f"baseline: {name}" + (" (best)" if name == perf.get("baseline") else ""),
                             justify="right")
        metrics = ("rmse", "mae", "r2") + (("qlike",) if "qlike" in perf else ())
        for metric in metrics:
            table.add_row(metric, _with_interval(perf.get(metric), intervals.get(metric), 6),
                          *(_num((v or {}).get(metric), 6) for v in baselines.values()))
    return table


def _folds_table(folds: dict[str, Any]) -> Table:
    table = Table(title=f"walk-forward: {folds.get('k')} expanding folds inside the train part (embargo "
                        f"{folds.get('embargo_bars')} bars); mean skill {_num(folds.get('mean_skill'), 4)}, "
                        f"sd {_num(folds.get('skill_sd'), 4)}: the definition, beside the holdout above")
    for column in ("fold", "train rows", "test rows", "test from", "to", "skill"):
        table.add_column(column, justify="right")
    for f in folds["folds"]:
        table.add_row(str(f["fold"]), str(f["train_rows"]), str(f["test_rows"]), str(f["test_start"])[:16],
                      str(f["test_end"])[:16], _num(f.get("skill")) if f.get("skill") is not None
                      else f"error: {f.get('error')}")
    return table


def _reliability_table(stated: dict[str, Any], is_classifier: bool) -> Table:
    what = "stated confidence vs observed hit rate" if is_classifier else (
        f"interval coverage (band {stated.get('band')}): stated vs observed")
    table = Table(title=f"{what}; weighted gap {_num(stated.get('weighted_gap'), 3)}")
    for column in ("bin", "rows", "stated", "observed"):
        table.add_column(column, justify="right")
    for b in stated["bins"]:
        table.add_row(f"{b['lo']:.2f}-{b['hi']:.2f}", str(b["count"]), _num(b["stated"], 3),
                      _num(b["observed"], 3))
    return table


def _trading_table(trading: dict[str, Any]) -> Table:
    hold: dict[str, Any] = trading.get("buy_and_hold") or {}
    table = Table(title=f"trading backtest (fees {trading.get('fee_bps')} bps + slippage "
                        f"{trading.get('slippage_bps')} bps per unit traded; Sharpe annualised)")
    for column in ("", "return", "sharpe", "max drawdown", "hit rate", "trades", "bars"):
        table.add_column(column, justify="right")
    def row(t: dict[str, Any]) -> list[str]:
        return [_pct(t.get("total_return")), _num(t.get("sharpe"), 2), _pct(t.get("max_drawdown"))]

    table.add_row("model", *row(trading), _pct(trading.get("hit_rate")), str(trading.get("trades")),
                  str(trading.get("bars")))
    table.add_row("buy and hold", *row(hold), "-", "-", str(trading.get("bars")))
    return table
