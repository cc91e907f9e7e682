"""The dashboard's templates and static files, and how they are served: our own CSS and JavaScript, and
plotly.js, never from a CDN.

plotly.js comes from a package, as published: `make install` fetches npm's `plotly.js-basic-dist-min`
(scatter and bar charts, all the dashboard draws: 1.2 MB, a first page in a third of the time of the full
bundle) into static/vendor/ with `npm ci` (pinned in package-lock.json); where npm is not available, the
full plotly.min.js that the `plotly` PyPI package ships (4.8 MB, the same plotly.js release) is served
instead. Pages name it `plotly.js` either way.

Every asset is read once, gzipped once, and served with a strong ETag; pages link it as
`/dashboard/static/<name>?v=<hash>`, and a request carrying the current hash is cacheable for a year
(`immutable`), so a browser fetches plotly.js once per plotly release.
"""

from __future__ import annotations

import gzip
import hashlib
import threading
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from fastapi.templating import Jinja2Templates

HERE = Path(__file__).resolve().parent
STATIC_DIR = HERE / "static"
TEMPLATES = Jinja2Templates(directory=str(HERE / "templates"))
PLOTLY = "plotly.js"
_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml"}


@dataclass(frozen=True)
class Asset:
    body: bytes
    gzipped: bytes
    media_type: str
    version: str

    @property
    def etag(self) -> str:
        return f'"{self.version}"'


_assets: dict[str, Asset] = {}
_lock = threading.Lock()


def plotly_path() -> Path:
    """The npm-built basic bundle when `make install` fetched it, else the plotly Python package's."""
    basic = STATIC_DIR / "vendor" / "plotly-basic.min.js"
    return (
        basic if basic.is_file() else Path(str(resources.files("plotly") / "package_data" / "plotly.min.js"))
    )


def _path(name: str) -> Path | None:
    if name == PLOTLY:
        return plotly_path()
    if "/" in name or name.startswith(".") or Path(name).suffix not in _TYPES:
        return None
    path = STATIC_DIR / name
    return path if path.is_file() else None


def asset(name: str) -> Asset | None:
    """The named asset, loaded and compressed on first use; None for anything not served."""
    found = _assets.get(name)
    if found is not None:
        return found
    path = _path(name)
    if path is None or not path.is_file():
        return None
    with _lock:
        if name not in _assets:
            body = path.read_bytes()
            _assets[name] = Asset(
                body,
                gzip.compress(body, compresslevel=6, mtime=0),
                _TYPES[path.suffix],
                hashlib.sha256(body).hexdigest()[:16],
            )
        return _assets[name]


def static_url(name: str) -> str:
    found = asset(name)
    if found is None:
        raise LookupError(f"no dashboard asset named {name!r}")
    return f"/dashboard/static/{name}?v={found.version}"


def _num(value: object, digits: int = 3) -> str:
    if value is None or isinstance(value, bool) or not isinstance(value, int | float):
        return "—" if value is None else str(value)
    if value != value:  # NaN
        return "—"
    return f"{value:.{digits}g}" if abs(value) < 1e-3 or abs(value) >= 1e5 else f"{value:.{digits}f}"


def _pct(value: object, digits: int = 1) -> str:
    return "—" if not isinstance(value, int | float) else f"{100 * value:.{digits}f}%"


def _when(value: object) -> str:
    """An ISO timestamp as `YYYY-MM-DD HH:MM UTC` (the page shows every time in UTC)."""
    if not isinstance(value, str) or len(value) < 16:
        return "—"
    return f"{value[:10]} {value[11:16]} UTC"


def _duration(seconds: object) -> str:
    if not isinstance(seconds, int | float):
        return "—"
    if seconds < 90:
        return f"{seconds:.1f} s"
    if seconds < 5400:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


TEMPLATES.env.globals["static_url"] = static_url


def _count(value: object) -> str:
    return f"{value:,}" if isinstance(value, int) else "—"


TEMPLATES.env.filters.update(num=_num, pct=_pct, when=_when, duration=_duration, count=_count)
