"""metadata.json and the model's row agree whatever fails or dies, and a model never becomes unloadable.

Each fault is injected at one precise step of a status change or a live-performance update: the process is
SIGKILLed at the commit, or after it; the disk is full once (ENOSPC) on `os.replace` or `os.fsync`; the
commit itself fails. After every one: the model loads, the champion still serves, a fault-free update
mends the file, and `sweep_store` leaves nothing behind.
"""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from app.services import models as svc
from app.store.cache import ModelCache
from tests.api.ml_setup import Trained, save

ROOT = Path(__file__).resolve().parents[2]

# A child that changes one model and is SIGKILLed at a chosen step (the commit, or just after it).
_KILLED_CHILD = textwrap.dedent(
    """
    import os, signal, sys
    from sqlalchemy import event
    from sqlalchemy.orm import Session
    from app.tables.models import ModelRecord

    name, operation, when = sys.argv[1:4]

    @event.listens_for(Session, "before_flush")
    def _mark(session, _ctx, _instances):
        if any(isinstance(o, ModelRecord) for o in session.dirty):
            session.info["wrote_model"] = True

    real_commit = Session.commit

    def commit(self):
        self.flush()
        wrote = self.info.get("wrote_model")
        if wrote and when == "at_commit":
            os.kill(os.getpid(), signal.SIGKILL)
        real_commit(self)
        if wrote and when == "after_commit":
            os.kill(os.getpid(), signal.SIGKILL)

    Session.commit = commit
    from app.services import models
    if operation == "status":
        models.set_status(name, "archived", "operator archives it")
    else:
        models.update_live_performance(name, 0.61, 40)
    """
)


def _run_killed(name: str, operation: str, when: str) -> None:
    child = subprocess.run([sys.executable, "-c", _KILLED_CHILD, name, operation, when], cwd=ROOT,
                           capture_output=True, text=True, timeout=120)
    assert child.returncode == -9, f"the child was not killed at {when}: {child.returncode} {child.stderr}"


def _metadata(store_dir: Path, name: str) -> dict:
    return json.loads((store_dir / svc.get_model(name).store_dir / "metadata.json").read_text())


def _assert_agree(store_dir: Path, name: str) -> None:
    row = svc.get_model(name)
    meta = _metadata(store_dir, name)
    assert (meta["status"], meta["live_performance"]) == (row.status, row.live_performance)


def _assert_no_leftovers(store_dir: Path) -> None:
    left = [p for p in store_dir.rglob("*") if p.name.startswith(".tmp-")]
    assert left == [], f"temp files left in the store: {left}"


def _assert_serves(name: str) -> None:
    svc.load_model(name)  # raises IntegrityError if file and hashes disagree
    cache = ModelCache()
    assert cache.reload("test").champions.get("direction") == name, "the champion dropped out of serving"


@pytest.fixture()
def champion(trained: Trained, store_dir: Path) -> str:
    return save(trained, "direction_small", status="active")


@pytest.mark.parametrize("operation", ["status", "live"])
@pytest.mark.parametrize("when", ["at_commit", "after_commit"])
def test_a_process_killed_around_the_commit_leaves_a_loadable_model_that_the_next_update_mends(
    champion: str, store_dir: Path, operation: str, when: str
) -> None:
    _run_killed(champion, operation, when)

    svc.load_model(champion)
    if svc.get_model(champion).status == "active":
        _assert_serves(champion)
    svc.update_live_performance(champion, 0.55, 50)  # a fault-free update
    _assert_agree(store_dir, champion)
    svc.sweep_store(older_than_s=0)
    _assert_no_leftovers(store_dir)
    svc.load_model(champion)


def _fail_once(monkeypatch: pytest.MonkeyPatch, module: object, attr: str, error: BaseException) -> list[int]:
    real = getattr(module, attr)
    calls: list[int] = []

    def failing(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        if not calls:
            calls.append(1)
            raise error
        return real(*args, **kwargs)

    monkeypatch.setattr(module, attr, failing)
    return calls


_ENOSPC = OSError(errno.ENOSPC, "No space left on device")


@pytest.mark.parametrize("step", ["replace", "fsync"])
@pytest.mark.parametrize("operation", ["status", "live"])
def test_a_full_disk_once_during_an_update_never_makes_the_model_unloadable(
    champion: str, store_dir: Path, monkeypatch: pytest.MonkeyPatch, step: str, operation: str
) -> None:
    calls = _fail_once(monkeypatch, os, step, _ENOSPC)
    change: Callable[[], object] = (
        (lambda: svc.update_live_performance(champion, 0.6, 30))
        if operation == "live"
        else (lambda: svc.set_status(champion, "archived", "operator archives it"))
    )
    try:
        change()
    except OSError as exc:  # allowed: a clear error naming the full disk
        assert exc.errno == errno.ENOSPC
    monkeypatch.undo()
    assert calls, f"os.{step} was never called: the fault was not injected"

    svc.load_model(champion)
    if svc.get_model(champion).status == "active":
        _assert_serves(champion)
    _assert_no_leftovers(store_dir)  # no `.tmp-*-metadata.json` refused as "files not saved with the model"
    svc.update_live_performance(champion, 0.58, 60)
    _assert_agree(store_dir, champion)
    svc.load_model(champion)


def test_a_failed_commit_keeps_file_and_row_as_they_were_and_reports_the_real_error(
    champion: str, store_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = _metadata(store_dir, champion)
    real_commit = Session.commit

    def failing_commit(self: Session) -> None:
        if any(type(o).__name__ == "ModelEvent" for o in self.new):
            raise OperationalError("COMMIT", {}, Exception("server closed the connection unexpectedly"))
        real_commit(self)

    monkeypatch.setattr(Session, "commit", failing_commit)
    with pytest.raises(OperationalError, match="server closed the connection"):
        svc.set_status(champion, "archived", "operator archives it")
    monkeypatch.undo()

    assert svc.get_model(champion).status == "active"
    assert _metadata(store_dir, champion) == before
    _assert_serves(champion)
    svc.set_status(champion, "archived", "operator archives it")  # the same change, fault-free, succeeds
    _assert_agree(store_dir, champion)
    svc.load_model(champion)


def test_sweep_removes_leftover_temp_files_and_rewrites_metadata_that_lags_its_row(
    champion: str, store_dir: Path
) -> None:
    row = svc.get_model(champion)
    directory = store_dir / row.store_dir
    stale = {**_metadata(store_dir, champion), "status": "candidate"}
    (directory / "metadata.json").write_text(json.dumps(stale))  # what a crash after the commit leaves
    leftovers = [directory / ".tmp-0123-metadata.json", store_dir / ".tmp-4567-metadata.json"]
    for path in leftovers:
        path.write_text("{}")
        old = time.time() - 7200
        os.utime(path, (old, old))

    report = svc.sweep_store(older_than_s=3600)

    assert not any(p.exists() for p in leftovers)
    assert report["metadata"] == [champion]
    _assert_agree(store_dir, champion)
    _assert_serves(champion)


def test_the_hourly_sweep_job_is_scheduled_and_mends_the_store(champion: str, store_dir: Path) -> None:
    from rq.cron import CronScheduler

    from app.core.redis import get_redis
    from workers.jobs import sweep_store_job

    cron = CronScheduler(connection=get_redis())
    cron.load_config_from_file("workers.cron_config")
    scheduled = {job.func_name for job in cron.get_jobs()}
    assert f"{sweep_store_job.__module__}.{sweep_store_job.__name__}" in scheduled
    directory = store_dir / svc.get_model(champion).store_dir
    (directory / "metadata.json").write_text(json.dumps({**_metadata(store_dir, champion), "status": "x"}))
    leftover = store_dir / ".tmp-dead-writer"
    leftover.write_text("{}")
    old = time.time() - 7200
    os.utime(leftover, (old, old))

    report = sweep_store_job()

    assert report["tmp"] == [".tmp-dead-writer"] and report["metadata"] == [champion]
    _assert_agree(store_dir, champion)
