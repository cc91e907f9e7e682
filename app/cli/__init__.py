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
    from sqlalchemy.exc import OperationalError, ProgrammingError

    try:
        app()
    except (OperationalError, ProgrammingError) as exc:
        text = str(exc.orig) if exc.orig is not None else str(exc)
        if "no such table" not in text and "does not exist" not in text:
            raise
        url = get_settings().resolved_database_url.split("@")[-1]
        typer.echo(f"the database ({url}) has no tables yet: run `mlpipe migrate` (or `mlpipe up`, which "
                   f"migrates) first. ({text.splitlines()[0]})", err=True)
        raise SystemExit(1) from None


from app.cli import cycle as _cycle  # noqa: E402,F401
from app.cli import ingest as _ingest  # noqa: E402,F401
from app.cli import keys as _keys  # noqa: E402,F401
from app.cli import models as _models  # noqa: E402,F401
from app.cli import replay as _replay  # noqa: E402,F401
from app.cli import stack as _stack  # noqa: E402,F401
from app.cli import tune as _tune  # noqa: E402,F401
