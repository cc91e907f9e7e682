"""Safe scikit-learn artifacts: skops files loaded only with an explicit list of trusted types."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from app.core.errors import IntegrityError

# skops is imported where a file is written or read, not with this module: importing skops.io lists every
# scikit-learn estimator (importing all of scikit-learn, and torch and pytest with it), 2-3 s of every
# process's start, which the CLI, the scheduler and the tuning workers never need.


def save_skops(estimator: Any, path: Path) -> None:
    import skops.io as sio

    sio.dump(estimator, path)


def load_skops(path: Path, trusted: list[str]) -> Any:
    """Load a skops file, refusing any type beyond skops' own safe set and the `trusted` list given.

    `sio.load` audits the whole tree against that set before it constructs anything and raises on any
    other type; the file is read a second time (`get_untrusted_types`) only to name them. (Listing them
    first on every load built the tree twice: 40% of a model's load time, paid by every rank and drift.)"""
    import skops.io as sio
    from skops.io.exceptions import UntrustedTypesFoundException

    try:
        return sio.load(path, trusted=list(trusted))
    except UntrustedTypesFoundException:
        unexpected = sorted(set(sio.get_untrusted_types(file=path)) - set(trusted))
        raise IntegrityError(f"{path.name} holds types that are not trusted for this model: {unexpected}"
                             ) from None
