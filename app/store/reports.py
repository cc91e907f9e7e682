"""Replay reports and dashboard plots in the artifact store, beside the models (`reports/<section>/<name>`).

Ready for the replay service and the dashboard: each document is one put (whole or absent, in S3 as in the
local directory), so a reader never sees half a report. They are derived documents (recomputable from the
database), so they carry no recorded hash; a model's artifacts do.
"""

from __future__ import annotations

import re

from app.core.errors import BadInput
from app.store.objects import object_store

SECTIONS = ("replays", "plots")
_NAME = re.compile(r"^[A-Za-z0-9_-]{1,100}\.(json|html|png|svg)$")


def _key(section: str, name: str) -> str:
    if section not in SECTIONS:
        raise BadInput(f"unknown report section {section!r}; one of {', '.join(SECTIONS)}")
    if not _NAME.match(name):
        raise BadInput(f"{name!r} is not a report name (letters, digits, '_' or '-'; .json/.html/.png/.svg)")
    return f"reports/{section}/{name}"


def put_report(section: str, name: str, content: bytes) -> str:
    key = _key(section, name)
    object_store().put(key, content)
    return key


def get_report(section: str, name: str) -> bytes | None:
    return object_store().get(_key(section, name))


def list_reports(section: str) -> list[str]:
    prefix = _key(section, "x.json").rsplit("/", 1)[0]
    return sorted(info.key.rsplit("/", 1)[1] for info in object_store().list(prefix))
