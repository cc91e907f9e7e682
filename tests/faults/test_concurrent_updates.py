"""Concurrent status and live-performance updates of one model, from several processes, on Postgres and on
SQLite: none fails, none is lost, every transition is recorded from the status it really left, and the
artifacts still match their hashes (metadata.json agrees with the row once they are done)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

from app.services import models as svc
from app.store.artifacts import sha256_file
from tests.api.ml_setup import Trained, save

ROOT = Path(__file__).resolve().parents[2]

_WORKER = textwrap.dedent(
    """
    import sys
    from app.services import models

    name, role, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3])
    for i in range(rounds):
        if role == "live":
            models.update_live_performance(name, 0.5 + i / 1000, i)
        else:
            models.set_status(name, role, f"{role} by a concurrent operator ({i})")
    """
)


def test_concurrent_status_and_live_updates_lose_nothing_and_keep_files_true(
    database: str, trained: Trained, store_dir: Path
) -> None:
    name = save(trained, "direction_small", status="active")
    roles = ["archived", "active", "live", "live"]
    procs = [subprocess.Popen([sys.executable, "-c", _WORKER, name, role, "8"], cwd=ROOT,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for role in roles]
    outcomes = [(p.wait(timeout=180), p.stderr.read()) for p in procs]
    for proc in procs:
        proc.stdout.close()
        proc.stderr.close()

    failed = [err.strip().splitlines()[-1] for code, err in outcomes if code != 0]
    assert failed == [], f"updates failed under concurrency: {failed}"
    row = svc.get_model(name)
    events = [e for e in svc.model_events(name) if e.event in ("promoted", "archived")]
    for before, after in zip(events, events[1:], strict=False):
        assert after.numbers["from"] == before.numbers["to"], "a transition was decided on a stale status"
    assert events[-1].numbers["to"] == row.status
    assert row.live_performance["trades_evaluated"] == 7  # each live writer's last update is its 8th
    directory = store_dir / row.store_dir
    for rel, digest in row.artifact_sha256.items():
        assert sha256_file(directory / rel) == digest, f"{rel} no longer matches its hash"
    meta = json.loads((directory / "metadata.json").read_text())
    assert (meta["status"], meta["live_performance"]) == (row.status, row.live_performance)
    svc.load_model(name)
