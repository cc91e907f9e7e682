"""A replay's own world: a SQLite database, a model store and RQ queues that no live process sees.

A replay runs the real cycle (the same start, build, rank, drift and retrain jobs) step after step, and
those jobs write models, statuses and events. In the service's database they would change what the API
serves, so every replay works in `<MODEL_STORE_DIR>/replays/<id>/`: `replay.db` (migrated like any
database), `store/` (its models), `state.json` (the steps done: what makes it resumable) and the
report. Its RQ queues and cycle lock carry the prefix `<QUEUE_PREFIX>-replay-<id>` on the service's
Redis (or on the replay's own embedded Redis when the service has none), and the replay starts its own
worker processes with the same environment, so builds still spread over RQ workers.

The candles it may use are copied in once from the service's database (the range the steps need, with
the training window and warm-up before the first step and one period after the last).
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select

from app.core.config import get_settings, reset_settings
from app.core.db import get_engine
from app.core.errors import BadInput, NotFound
from app.core.redis import reset_redis
from app.data.candles import store_candles
from app.data.frames import OHLCV
from app.tables.candles import Candle

REPLAY_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
_ENV_KEYS = ("DATABASE_URL", "MODEL_STORE_DIR", "QUEUE_PREFIX", "REDIS_URL", "MARKET_DATA_SOURCE")


def replays_dir() -> Path:
    return get_settings().model_store_dir.resolve() / "replays"


@dataclass(frozen=True)
class Workspace:
    replay_id: str
    root: Path
    redis_url: str | None  # the service's Redis, or None: the replay's own embedded one
    queue_prefix: str  # fixed when the workspace is made (the service's settings), not inside `active()`

    @classmethod
    def of(cls, replay_id: str, *, must_exist: bool = False) -> Workspace:
        if not REPLAY_ID.match(replay_id):
            raise BadInput(f"replay id {replay_id!r}: lower-case letters, digits, '-' and '_' (at most 63)")
        root = replays_dir() / replay_id
        if must_exist and not (root / "state.json").is_file():
            raise NotFound(f"no replay {replay_id!r} under {replays_dir()}")
        settings = get_settings()
        return cls(replay_id, root, settings.redis_url, f"{settings.queue_prefix}-replay-{replay_id}")

    @property
    def database_url(self) -> str:
        return f"sqlite:///{self.root / 'replay.db'}"

    @property
    def store_dir(self) -> Path:
        return self.root / "store"

    def env(self) -> dict[str, str]:
        """The environment of the replay's worker processes (and of this process while it drives them)."""
        env = {
            "DATABASE_URL": self.database_url,
            "MODEL_STORE_DIR": str(self.store_dir),
            "QUEUE_PREFIX": self.queue_prefix,
            "MARKET_DATA_SOURCE": "csv",  # a replay never ingests: its candles are the copied ones
        }
        if self.redis_url:
            env["REDIS_URL"] = self.redis_url
        return env

    @contextmanager
    def active(self) -> Iterator[None]:
        """This process's settings point at the replay's world for the block."""
        saved = {k: os.environ.get(k) for k in _ENV_KEYS}
        os.environ.update(self.env())
        if not self.redis_url:
            os.environ.pop("REDIS_URL", None)
        reset_settings()
        reset_redis()
        try:
            yield
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
            reset_settings()
            reset_redis()

    def worker_command(self) -> list[str]:
        script = Path(sys.executable).with_name("mlpipe")
        return [str(script), "worker"] if script.exists() else [sys.executable, "-m", "app.cli", "worker"]

    # -- state (steps done), written whole and atomically --------------------------------------------
    @property
    def state_path(self) -> Path:
        return self.root / "state.json"

    def read_state(self) -> dict[str, Any]:
        return json.loads(self.state_path.read_text()) if self.state_path.is_file() else {}

    def write_json(self, name: str, payload: dict[str, Any]) -> Path:
        path = self.root / name
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(json.dumps(payload, indent=2, default=str))
        os.replace(tmp, path)
        return path


def copy_candles(workspace: Workspace, symbols: list[str], start_ms: int, end_ms: int) -> dict[str, int]:
    """Copy the service's 1m candles of [start_ms, end_ms] into the replay's database (idempotent)."""
    source_engine = get_engine()  # the service's database: called before `active()`
    copied: dict[str, int] = {}
    target = get_engine(workspace.database_url)
    for symbol in symbols:
        stmt = (
            select(Candle.ts, *(getattr(Candle, c) for c in OHLCV), Candle.source)
            .where(Candle.symbol == symbol, Candle.timeframe == "1m", Candle.ts.between(start_ms, end_ms))
            .order_by(Candle.ts)
        )
        with source_engine.connect() as conn:
            rows = conn.execute(stmt).all()
        if not rows:
            raise BadInput(f"no stored 1m candles of {symbol} between {start_ms} and {end_ms}: "
                           "import or ingest them first (`mlpipe ingest`)")
        import pandas as pd

        frame = pd.DataFrame(rows, columns=["ts", *OHLCV, "source"])
        copied[symbol] = 0
        for source, part in frame.groupby("source", sort=False):
            copied[symbol] += store_candles(symbol, part.drop(columns="source"), str(source), engine=target)
    return copied
