"""What every command prints through: one console, and one way to turn errors into exit codes."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import typer
from rich.console import Console

from app.core.errors import BadInput, MLPipeError


def make_console() -> Console:
    """A terminal's own width; 160 columns when piped or captured, so tables are not squeezed to 80."""
    console = Console()
    return console if console.is_terminal else Console(width=160)


@contextmanager
def clear_errors(console: Console, what: str) -> Iterator[None]:
    """Our errors become one line and an exit code (2: fix the input, 1: it failed); no traceback."""
    try:
        yield
    except BadInput as exc:
        console.print(f"[red]error:[/red] {exc.message}")
        raise typer.Exit(2) from None
    except MLPipeError as exc:
        console.print(f"[red]{what} failed:[/red] {exc.message}")
        raise typer.Exit(1) from None
