"""`mlpipe replay`: the real cycle every 12 hours over stored candles, its champions served and scored."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from app.cli import app
from app.cli.console import make_console

console = make_console()


def render_report(report: dict[str, Any]) -> Table:
    from app.services.replay import TABLE_COLUMNS, table_rows

    table = Table(title=f"replay {report['replay_id']}: {len(report['steps'])} steps", header_style="bold")
    for column in TABLE_COLUMNS:
        table.add_column(column)
    for row in table_rows(report):
        table.add_row(*row, style="green" if row[4] == "yes" else None)
    return table


@app.command()
def replay(
    symbols: str = typer.Option(..., "--symbols", help="Comma-separated, e.g. BTC-USDT,ETH-USDT."),
    from_: str = typer.Option(..., "--from", help="First step: a date or an ISO-8601 UTC time."),
    to: str = typer.Option(..., "--to", help="Last step: a date or an ISO-8601 UTC time."),
    every: str = typer.Option("12h", "--every", help="Time between steps (cycles): 12h, 6h, 1d..."),
    models: Path | None = typer.Option(None, "--models",
                                       help="Model definitions (default: config/models.yaml)."),
    window_days: float | None = typer.Option(None, "--window-days",
                                             help="Training window in days (default: the file's)."),
    workers: int = typer.Option(2, "--workers", min=1, max=16, help="RQ worker processes for the builds."),
    replay_id: str | None = typer.Option(None, "--id", help="Resume (or name) this replay."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """Replay the pipeline over stored candles: at each step the real cycle (build, rank, drift, retrain)
    on the candles known then; its champions served on the next period and scored once their horizons
    passed, beside 'freeze the first champion' and 'always take the newest model'. Resumable with --id."""
    from app.core.errors import MLPipeError
    from app.services.replay import new_replay_id, parse_every, parse_when, plan_steps, run_replay

    try:
        spec = {
            "replay_id": replay_id or new_replay_id(),
            "symbols": [s.strip() for s in symbols.split(",") if s.strip()],
            "from_ms": parse_when(from_),
            "to_ms": parse_when(to),
            "every_hours": parse_every(every),
            "workers": workers,
        }
        if models is not None:
            spec["models_file"] = str(models)
        if window_days is not None:
            spec["window_days"] = window_days
        total = len(plan_steps(spec["from_ms"], spec["to_ms"], spec["every_hours"]))
        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                      TimeElapsedColumn(), console=console, transient=as_json) as bar:
            steps = bar.add_task("steps", total=total)
            builds = bar.add_task("models of this step", total=1)

            def progress(event: dict[str, Any]) -> None:
                if event.get("event") == "step":
                    bar.update(steps, completed=event["index"])
                    bar.update(builds, completed=0, total=1)
                elif event.get("event") == "scoring":
                    bar.update(steps, completed=total, description="steps (scoring what was served)")
                elif "models" in event:
                    bar.update(builds, completed=event["done"], total=max(1, event["models"]),
                               description=f"models of this step ({event['stage']})")

            console.print(f"replay [cyan]{spec['replay_id']}[/]: {total} steps (resume with --id "
                          f"{spec['replay_id']})", highlight=False)
            report = run_replay(spec, progress)
    except MLPipeError as exc:
        console.print(f"[red]{exc}[/]")
        raise typer.Exit(2) from None
    if as_json:
        typer.echo(json.dumps(report, default=str))
        return
    console.print(render_report(report))
    console.print(f"report: {report['directory']}/report.json; plots: "
                  f"{', '.join(report['plots']) or 'none'}", highlight=False)
