"""Safe scikit-learn artifacts: skops files loaded only with an explicit list of trusted types."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import skops.io as sio
from skops.io.exceptions import UntrustedTypesFoundException

from app.core.errors import IntegrityError


def save_skops(estimator: Any, path: Path) -> None:
    sio.dump(estimator, path)


def load_skops(path: Path, trusted: list[str]) -> Any:
    """Load a skops file, refusing any type beyond skops' own safe set and the `trusted` list given.

    `sio.load` audits the whole tree against that set before it constructs anything and raises on any
    other type; the file is read a second time (`get_untrusted_types`) only to name them. (Listing them
    first on every load built the tree twice: 40% of a model's load time, paid by every rank and drift.)"""
    try:
        return sio.load(path, trusted=list(trusted))
    except UntrustedTypesFoundException:
        unexpected = sorted(set(sio.get_untrusted_types(file=path)) - set(trusted))
        raise IntegrityError(f"{path.name} holds types that are not trusted for this model: {unexpected}"
                             ) from None
