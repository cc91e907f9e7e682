"""`mlpipe`: the command line of the service (DESIGN section 9)."""

from __future__ import annotations

import typer

app = typer.Typer(
    name="mlpipe",
    help="Crypto-market ML prediction service: ingest, train, backtest, run cycles and serve models.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


def main() -> None:
    app()
