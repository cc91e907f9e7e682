"""Adopted model definitions (DESIGN 10): the versions tuning studies wrote, newest last, in the database.

`config/models.yaml` stays as the operator wrote it. A later cycle builds each file definition with the
config and features of its newest adopted version (`apply_adopted`), provided the type, horizon and
timeframe still match (the tuner changes none of them; an operator who changes one in the file starts
that definition afresh). `mlpipe definitions` and GET /definitions list them.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func
from sqlmodel import select

from app.core.db import session_scope
from app.tables.tuning import DefinitionVersion

_KEPT = ("type", "horizon", "timeframe")


def list_versions(name: str | None = None) -> list[DefinitionVersion]:
    """Every adopted version (of one definition when `name` is given), oldest first."""
    with session_scope() as session:
        stmt = select(DefinitionVersion).order_by(DefinitionVersion.name, DefinitionVersion.version)
        if name is not None:
            stmt = stmt.where(DefinitionVersion.name == name)
        return list(session.exec(stmt).all())


def latest_versions() -> dict[str, DefinitionVersion]:
    newest: dict[str, DefinitionVersion] = {}
    for version in list_versions():
        newest[version.name] = version
    return newest


def adopt(name: str, definition: dict[str, Any], study_id: str, reason: str,
          numbers: dict[str, Any]) -> DefinitionVersion:
    """Write version n+1 of `name` (version 1 is the file's; the first adopted one is 2)."""
    with session_scope(write=True) as session:
        top = session.exec(select(func.max(DefinitionVersion.version)).where(DefinitionVersion.name == name)
                           ).one()
        row = DefinitionVersion(name=name, version=int(top or 1) + 1, definition=definition,
                                study_id=study_id, reason=reason, numbers=numbers)
        session.add(row)
        session.flush()
        session.refresh(row)
        return row


def apply_adopted(definitions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The definitions with each one's newest adopted config and features (when it still applies)."""
    return adopted_with_versions(definitions)[0]


def adopted_with_versions(definitions: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """(`apply_adopted`'s definitions, the version each one is: 1 for the file's own)."""
    newest = latest_versions()
    out, versions = [], {}
    for definition in definitions:
        version = newest.get(definition["name"])
        versions[definition["name"]] = 1
        if version is not None and all(
            version.definition.get(k) == definition.get(k) for k in _KEPT if k in definition
        ):
            definition = {**definition, "config": dict(version.definition.get("config") or {}),
                          "features": list(version.definition.get("features") or [])}
            versions[definition["name"]] = version.version
        out.append(definition)
    return out, versions


def as_dict(version: DefinitionVersion) -> dict[str, Any]:
    return {"name": version.name, "version": version.version, "definition": version.definition,
            "study_id": version.study_id, "reason": version.reason, "numbers": version.numbers,
            "created_ts": version.created_ts.isoformat()}
