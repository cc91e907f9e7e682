"""`mlpipe cycle`: force a model cycle (the same as POST /cycles) and, with --wait, follow it live."""

from __future__ import annotations

import time
from typing import Any

import typer
from rich.console import Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from app.cli import app
from app.cli.console import make_console

console = make_console()
_STATE_STYLE = {"queued": "dim", "running": "yellow", "succeeded": "green", "failed": "red", "skipped": "dim"}
_DONE = ("succeeded", "partial", "failed", "interrupted")


def render(view: dict[str, Any]) -> Group:
    """The cycle's stage line and one row per model definition (and retrain)."""
    head = Text.assemble(
        ("cycle ", "bold"), (view["id"][:12], "cyan"), "  status ", (view["status"], "bold"),
        "  stage ", (view["stage"], "magenta"),
    )
    table = Table(show_header=True, header_style="bold", expand=False)
    for column in ("model definition", "state", "model", "score", "seconds", "note"):
        table.add_column(column)
    for name, entry in view["progress"].items():
        state = entry.get("state", "?")
        note = entry.get("error") or entry.get("outcome") or ""
        score = entry.get("score")
        table.add_row(
            name, Text(state, style=_STATE_STYLE.get(state, "")),
            entry.get("model") or entry.get("new_model") or "",
            "" if score is None else f"{score:.1f}", str(entry.get("seconds", "")), str(note)[:60],
        )
    parts: list[Any] = [head, table]
    for error in view["errors"][-5:]:
        style = "yellow" if error.get("level") == "warning" else "red"
        line = f"{error.get('stage')}: {error.get('model') or ''} {error.get('message')}"
        parts.append(Text(line, style=style))
    return Group(*parts)


def render_list(views: list[dict[str, Any]]) -> Table:
    """One row per cycle, newest first: what `--show <id>` needs and how each ended."""
    table = Table(show_header=True, header_style="bold", expand=False)
    for column in ("id", "status", "trigger", "stage", "models ok", "created", "finished"):
        table.add_column(column)
    for view in views:
        ok = sum(1 for p in view["progress"].values() if p.get("state") == "succeeded")
        table.add_row(
            view["id"], Text(view["status"], style=_STATE_STYLE.get(view["status"], "")), view["trigger"],
            view["stage"], f"{ok}/{len(view['progress'])}", (view["created_ts"] or "")[:19],
            (view["finished_ts"] or "")[:19],
        )
    return table


@app.command()
def cycle(
    wait: bool = typer.Option(
        False, "--wait", help="follow it until it ends (needs a worker); follows the running cycle if one is"
    ),
    window_days: float = typer.Option(None, "--window-days", help="rolling training window (default 7)"),
    show: str = typer.Option(None, "--show", help="print one cycle by id instead of starting one"),
    list_: bool = typer.Option(False, "--list", help="print the newest cycles instead of starting one"),
    timeout: float = typer.Option(6 * 3600, "--timeout", help="give up waiting after this many seconds"),
) -> None:
    """Run a model cycle now: ingest, build every definition, rank, drift, retrain (DESIGN 6)."""
    from app.core.errors import MLPipeError
    from app.services import cycle as cycles

    try:
        if show:
            console.print(render(cycles.cycle_view(cycles.get_cycle(show))))
            return
        if list_:
            console.print(render_list([cycles.cycle_view(c) for c in cycles.list_cycles()]))
            return
        options = {"window_days": window_days} if window_days else {}
        try:
            started = cycles.start_cycle("cli", options)
            console.print(
                f"cycle [cyan]{started.id}[/cyan] queued; see it with `mlpipe cycle --show {started.id}`"
            )
        except cycles.CycleRunning as exc:
            if not wait:
                raise
            started = cycles.get_cycle(exc.running_id)  # --wait follows the cycle that is running
            console.print(f"cycle [cyan]{started.id}[/cyan] is already running; following it")
    except cycles.CycleRunning as exc:
        console.print(f"[red]{exc.message}[/red]")
        raise typer.Exit(code=2) from None
    except MLPipeError as exc:
        console.print(f"[red]{exc.message}[/red]")
        raise typer.Exit(code=1) from None
    if not wait:
        return
    view = _follow(cycles, started, timeout)
    if view["status"] not in ("succeeded", "partial"):
        raise typer.Exit(code=1)


def _follow(cycles: Any, started: Any, timeout: float) -> dict[str, Any]:
    """Redraw the cycle every second until it ends (or `timeout` passes); return its last view."""
    deadline = time.monotonic() + timeout
    view = cycles.cycle_view(started)
    with Live(render(view), console=console, refresh_per_second=2) as live:
        while view["status"] not in _DONE and time.monotonic() <= deadline:
            time.sleep(1.0)
            view = cycles.cycle_view(cycles.get_cycle(started.id))
            live.update(render(view))
    return view
