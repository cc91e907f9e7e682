"""One way to make the rich console the commands print to."""

from __future__ import annotations

from rich.console import Console


def make_console() -> Console:
    """A terminal's own width; 160 columns when piped or captured, so tables are not squeezed to 80."""
    console = Console()
    return console if console.is_terminal else Console(width=160)
