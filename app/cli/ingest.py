"""`mlpipe ingest`: fill the candle store from an exchange, CSV files or the simulator."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from app.cli import app
from app.cli.console import clear_errors, make_console
from app.core.config import get_settings

if TYPE_CHECKING:
    from app.services.ingest import SymbolReport


class Source(StrEnum):
    exchange = "exchange"
    csv = "csv"
    simulated = "simulated"


@app.command("ingest")
def ingest_command(
    source: Source = typer.Option(None, "--source", help="where from (default: MARKET_DATA_SOURCE)"),
    symbols: str = typer.Option(None, "--symbols", help="e.g. BTC-USDT,ETH-USDT (default: SYMBOLS)"),
    days: float = typer.Option(None, "--days", help="history to fetch or back-fill, in days (default: 7)"),
    path: Path = typer.Option(None, "--path", help="csv: a candle file or a directory of them"),
) -> None:
    """Fill the candle store; re-running adds only what is new."""
    from app.services.ingest import ingest, normalize_symbols  # heavy (ccxt, scipy): only when used

    console = make_console()
    settings = get_settings()
    chosen = source.value if source else settings.market_data_source
    with clear_errors(console, "ingest"):
        if symbols is not None:
            names = normalize_symbols(symbols, required=chosen != "csv")
        elif chosen == "csv":
            names = []
        else:
            names = settings.symbols
        with _progress(console) as bar:
            tasks: dict[str, int] = {}

            def report(symbol: str, done: int, total: int) -> None:
                if symbol not in tasks:
                    tasks[symbol] = bar.add_task(symbol, total=max(total, 1))
                bar.update(tasks[symbol], completed=done, total=max(total, done, 1))

            reports = ingest(chosen, names, days=days if days is not None else float(settings.backfill_days),
                             path=path, progress=report)
    console.print(_summary(reports))


def _progress(console: Console) -> Progress:
    return Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=console, transient=False,
    )


def _summary(reports: list[SymbolReport]) -> Table:
    sources = sorted({r.source for r in reports})
    table = Table(title=f"ingest summary ({', '.join(sources) or 'nothing to do'})")
    for column in ("symbol", "fetched", "added", "rejected", "gaps", "first (UTC)", "last (UTC)"):
        table.add_column(column, justify="right" if column in ("fetched", "added") else "left", no_wrap=True)
    for r in reports:
        rejected = "\n".join(f"{reason} {n}" for reason, n in sorted(r.rejected.items())) or "0"
        gaps = _gaps_text(r.gaps)
        first, last = _time(r.first_ts), _time(r.last_ts)
        table.add_row(r.symbol, str(r.fetched), str(r.added), rejected, gaps, first, last)
    return table


def _gaps_text(gaps: list) -> str:
    """How many holes and bars, then the three largest with where they start."""
    if not gaps:
        return "0"
    largest = sorted(gaps, key=lambda g: g.missing_bars, reverse=True)[:3]
    lines = [f"{len(gaps)}: {sum(g.missing_bars for g in gaps)} bars"]
    lines += [f"{g.missing_bars} from {_time(g.start_ts)}" for g in largest]
    return "\n".join(lines)


def _time(ts: int | None) -> str:
    return "-" if ts is None else datetime.fromtimestamp(ts / 1000, UTC).strftime("%y-%m-%d %H:%M")
