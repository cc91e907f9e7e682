"""`mlpipe tune`: a tuning study of one definition (the same as POST /tuning), followed with a progress bar
(trials done, best so far) until its result; and `mlpipe definitions`: the versions tuning adopted."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from typing import Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from app.cli import app
from app.cli.console import make_console

console = make_console()

WORKER_EXIT_SECONDS = 30.0  # a burst worker's exit after its queue emptied; then it is stopped


def _listening_workers() -> int:
    from rq import Worker

    from app.core.queues import get_queue
    from app.core.redis import rq_connection

    queue = get_queue("tune")
    return len(Worker.all(connection=rq_connection(), queue=queue))


def _spawn_workers(count: int) -> list[subprocess.Popen]:
    """Burst workers on the tune queue, in their own processes (they exit when the queue is empty)."""
    command = [sys.executable, "-c", "from app.cli import main; main()", "worker", "--burst", "-q", "tune"]
    return [subprocess.Popen(command, env=os.environ.copy(), stdout=subprocess.DEVNULL) for _ in range(count)]


def _reap(spawned: list[subprocess.Popen], grace: float = WORKER_EXIT_SECONDS) -> None:
    """Wait for the burst workers started here, at most `grace` seconds in all; then stop the slow ones
    (SIGTERM, RQ's warm shutdown, then SIGKILL): the study has ended by then, or the wait for it has."""
    deadline = time.monotonic() + grace
    for proc in spawned:
        try:
            proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            console.print(f"[yellow]worker {proc.pid} still running {grace:g} s after the study; "
                          "stopping it[/yellow]")
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _best(view: dict[str, Any]) -> str:
    return "-" if view["best_value"] is None else f"{view['best_value']:+.4f}"


def render_result(view: dict[str, Any]) -> Table:
    result = view.get("result") or {}
    holdout = result.get("holdout") or {}
    test = holdout.get("test") or {}
    table = Table(show_header=False, expand=False)
    table.add_row("study", view["id"])
    table.add_row("status", view["status"] + (f" ({view['error']})" if view.get("error") else ""))
    table.add_row("trials", f"{result.get('trials', view['trials_done'])} {result.get('states', '')}")
    table.add_row("decision", str(result.get("decision")))
    table.add_row("reason", str(result.get("reason")))
    rows = (("current on holdout", holdout.get("current_skill"), holdout.get("current_interval")),
            ("best on holdout", holdout.get("best_skill"), holdout.get("best_interval")))
    for label, skill, interval in rows:
        if skill is not None:
            span = "" if not interval else f"  95% [{interval[0]:+.4f}, {interval[1]:+.4f}]"
            table.add_row(label, f"{skill:+.4f}{span}")
    if test:
        table.add_row("paired test", f"{test.get('test')} p = {test.get('p_value'):.3g} on {test.get('n')} "
                                     f"rows (effective n {test.get('n_effective')})")
    if result.get("version"):
        table.add_row("adopted as", f"{view['definition']} version {result['version']} (mlpipe definitions)")
    return table


@app.command()
def tune(
    definition: str = typer.Option(None, "--definition", "-d", help="a definition of config/models.yaml"),
    trials: int = typer.Option(None, "--trials", help="trials to try (default TUNING_TRIALS, 50)"),
    minutes: float = typer.Option(None, "--minutes", help="time budget (default TUNING_MINUTES, 10)"),
    workers: int = typer.Option(
        0, "--workers", help="burst workers to start here (0: use running ones, or start 1 if none listens)"
    ),
    wait: bool = typer.Option(True, "--wait/--no-wait", help="follow the study until its result"),
    resume: str = typer.Option(None, "--resume", help="carry on this study id instead of starting one"),
) -> None:
    """Tune one definition's hyperparameters and features with an Optuna study (DESIGN 10)."""
    from app.core.errors import MLPipeError
    from app.services.tuning import studies, views

    if not definition and not resume:
        console.print("[red]name the definition to tune (--definition NAME) or a study to carry on "
                      "(--resume ID)[/red]")
        raise typer.Exit(code=2)
    try:
        if resume:
            study = studies.resume_study(resume, trials=trials, minutes=minutes)
        else:
            study = studies.start_study(definition, trials=trials, minutes=minutes, trigger="cli")
    except MLPipeError as exc:
        console.print(f"[red]{exc.message}[/red]")
        raise typer.Exit(code=1) from None
    console.print(f"study [cyan]{study.id}[/cyan] of {study.definition}: {study.budget['trials']} trials, "
                  f"{study.budget['seconds']:g} s; see it with GET /tuning/{study.id}")
    if not wait:
        return
    spawned = _spawn_workers(workers or (0 if _listening_workers() else 1))
    try:
        view = _follow(views, study.id, float(study.budget["seconds"]) + 600)
    finally:
        _reap(spawned)
    console.print(render_result(view))
    if view["status"] != "finished":
        raise typer.Exit(code=1)


def _follow(views: Any, study_id: str, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    view = views.get_study_view(study_id)
    columns = (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("best so far {task.fields[best]}"), TimeElapsedColumn())
    with Progress(*columns, console=console) as progress:
        task = progress.add_task("trials", total=view["budget"]["trials"], best=_best(view))
        while view["status"] not in ("finished", "failed") and time.monotonic() <= deadline:
            time.sleep(1.0)
            view = views.get_study_view(study_id)
            label = "finishing (holdout)" if view["status"] == "finishing" else "trials"
            progress.update(task, completed=view["trials_done"], best=_best(view), description=label)
    return view


@app.command()
def definitions(name: str = typer.Option(None, "--name", help="only this definition")) -> None:
    """The definition versions tuning studies adopted (the database; config/models.yaml is version 1)."""
    from app.services.definition_versions import list_versions

    table = Table(show_header=True, header_style="bold", expand=False)
    for column in ("name", "version", "config", "features", "study", "adopted"):
        table.add_column(column)
    for v in list_versions(name):
        features = ", ".join(v.definition.get("features") or [])
        table.add_row(v.name, str(v.version), str(v.definition.get("config")), features, v.study_id or "",
                      v.created_ts.isoformat()[:19])
    console.print(table)
