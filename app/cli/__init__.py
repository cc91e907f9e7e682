"""`mlpipe`: the command line of the service (DESIGN section 9)."""

from __future__ import annotations

import typer

from app.core.config import get_settings
from app.core.logging import configure_logging

app = typer.Typer(
    name="mlpipe",
    help="Crypto-market ML prediction service: ingest, train, backtest, run cycles and serve models.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


@app.callback()
def _setup() -> None:
    """Logs go to stderr so that command output (keys, tables) stays clean on stdout."""
    settings = get_settings()
    configure_logging(settings.log_level, settings.log_json)


def main() -> None:
    app()


from app.cli import cycle as _cycle  # noqa: E402,F401
from app.cli import ingest as _ingest  # noqa: E402,F401
from app.cli import keys as _keys  # noqa: E402,F401
from app.cli import models as _models  # noqa: E402,F401
from app.cli import stack as _stack  # noqa: E402,F401
