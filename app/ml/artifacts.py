"""Safe scikit-learn artifacts: skops files loaded only with an explicit list of trusted types."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import skops.io as sio

from app.core.errors import IntegrityError


def save_skops(estimator: Any, path: Path) -> None:
    sio.dump(estimator, path)


def load_skops(path: Path, trusted: list[str]) -> Any:
    """Load a skops file, refusing any type beyond skops' own safe set and the `trusted` list given."""
    untrusted = sio.get_untrusted_types(file=path)
    unexpected = sorted(set(untrusted) - set(trusted))
    if unexpected:
        raise IntegrityError(f"{path.name} holds types that are not trusted for this model: {unexpected}")
    return sio.load(path, trusted=list(trusted))
