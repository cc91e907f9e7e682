"""`mlpipe keys create|list|revoke`: manage API keys (stored only as hashes)."""

from __future__ import annotations

from datetime import UTC, datetime

import typer

from app.cli import app
from app.core.errors import MLPipeError
from app.services import keys as key_service

keys_app = typer.Typer(help="Create, list and revoke API keys.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")


@keys_app.command("create")
def create(
    role: str = typer.Option(..., "--role", help="predict (predictions, reads) or operator (everything)"),
    name: str = typer.Option("", "--name", help="a label to recognise the key by"),
) -> None:
    """Make a key and print it: this is the only time it is shown."""
    try:
        key = key_service.create_key(role, name)
    except MLPipeError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(1) from exc
    typer.echo(key)
    typer.echo(
        f"{role} key created; it is stored only as a hash and cannot be shown again. "
        "Send it as 'Authorization: Bearer <key>' or 'X-API-Key: <key>'.",
        err=True,
    )


@keys_app.command("list")
def list_() -> None:
    """Show every key by prefix (never the key itself)."""
    rows = key_service.list_keys()
    if not rows:
        typer.echo("no API keys in the database (`mlpipe keys create --role predict` makes one)")
        return
    typer.echo(f"{'PREFIX':<10} {'ROLE':<9} {'CREATED (UTC)':<20} {'REVOKED':<8} NAME")
    for row in rows:
        created = datetime.fromtimestamp(row.created_ts / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S")
        revoked = "yes" if row.revoked else "no"
        typer.echo(f"{row.prefix:<10} {row.role:<9} {created:<20} {revoked:<8} {row.name}")


@keys_app.command("revoke")
def revoke(prefix: str = typer.Argument(..., help="the key's prefix as `mlpipe keys list` shows it")) -> None:
    """Revoke a key: this process refuses it at once, running API processes within 30 seconds."""
    try:
        row = key_service.revoke(prefix)
    except MLPipeError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(1) from exc
    typer.echo(f"revoked {row.role} key {row.prefix}")
