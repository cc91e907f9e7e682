"""A full disk (a real ENOSPC, from a tiny tmpfs) and a read-only store (the same tmpfs remounted ro),
during save, PATCH, live-performance updates and API start: never an unloadable model, and clear errors.

Mounting needs root (CAP_SYS_ADMIN); elsewhere these tests are skipped, and the injected-fault tests of
test_metadata_faults.py still cover every step.
"""

from __future__ import annotations

import errno
import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from app.core.config import reset_settings
from app.core.errors import Unavailable
from app.services import keys
from app.services import models as svc
from tests.api.ml_setup import Trained, save, store_all_candles
from tests.api.server import serve


class Tmpfs:
    def __init__(self, path: Path) -> None:
        self.path = path

    def fill(self) -> None:
        """Fill it to the last byte: the next write that needs a block gets ENOSPC."""
        with (self.path / ".filler").open("wb") as handle:
            try:
                while True:
                    handle.write(b"\0" * 65536)
                    handle.flush()
            except OSError as exc:
                assert exc.errno == errno.ENOSPC
        try:
            with (self.path / ".filler-small").open("wb") as handle:
                while True:
                    handle.write(b"\0" * 512)
                    handle.flush()
        except OSError:
            pass  # not even a small file fits any more

    def free(self) -> None:
        for name in (".filler", ".filler-small"):
            (self.path / name).unlink(missing_ok=True)

    def read_only(self, on: bool) -> None:
        subprocess.run(["mount", "-o", f"remount,{'ro' if on else 'rw'}", str(self.path)], check=True)


@pytest.fixture()
def tmpfs_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Tmpfs]:
    path = tmp_path / "store"
    path.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mount = ["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(path)]
    mounted = subprocess.run(mount, capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    monkeypatch.setenv("MODEL_STORE_DIR", str(path))
    reset_settings()
    try:
        yield Tmpfs(path)
    finally:
        subprocess.run(["mount", "-o", "remount,rw", str(path)], capture_output=True)
        subprocess.run(["umount", "-l", str(path)], capture_output=True)
        reset_settings()


def _agree(name: str) -> bool:
    row = svc.get_model(name)
    meta = json.loads((svc.model_store().path(row.store_dir) / "metadata.json").read_text())
    return (meta["status"], meta["live_performance"]) == (row.status, row.live_performance)


@pytest.mark.parametrize("fault", ["full", "read_only"])
def test_save_into_a_full_or_read_only_store_is_a_clear_503_and_leaves_nothing(
    trained: Trained, tmpfs_store: Tmpfs, fault: str
) -> None:
    tmpfs_store.fill() if fault == "full" else tmpfs_store.read_only(True)
    with pytest.raises(Unavailable) as caught:
        svc.save_model(trained.models["direction_small"], name="direction_small")
    tmpfs_store.read_only(False)
    expected = "No space left on device" if fault == "full" else "Read-only file system"
    assert expected in caught.value.message and str(tmpfs_store.path) in caught.value.message
    assert caught.value.status_code == 503
    assert svc.list_models() == []
    assert [p.name for p in tmpfs_store.path.iterdir() if not p.name.startswith(".filler")] == []


@pytest.mark.parametrize("fault", ["full", "read_only"])
def test_patch_and_live_updates_on_a_full_or_read_only_store_keep_the_model_serving(
    trained: Trained, tmpfs_store: Tmpfs, fault: str
) -> None:
    store_all_candles(trained)
    champion = save(trained, "direction_small", status="active")
    spare = save(trained, "direction_deep", status="active")
    operator = {"X-API-Key": keys.create_key("operator")}
    tmpfs_store.fill() if fault == "full" else tmpfs_store.read_only(True)
    try:
        with serve() as url, httpx.Client(base_url=url, timeout=30) as http:
            archived = http.patch(f"/models/{spare}", json={"status": "archived", "reason": "operator"},
                                  headers=operator)
            svc.update_live_performance(champion, 0.57, 42)
            answer = http.post("/predict/direction", json={"symbol": "BTC-USDT"}, headers=operator)
    finally:
        tmpfs_store.read_only(False)
        tmpfs_store.free()
    assert archived.status_code == 200 and archived.json()["status"] == "archived"  # the row is the truth
    assert answer.status_code == 200 and answer.json()["model"] == champion
    svc.load_model(champion)
    svc.load_model(spare)
    assert svc.sweep_store(older_than_s=0)["metadata"] == sorted([champion, spare])  # mended once it can be
    assert _agree(champion) and _agree(spare)


def test_the_api_starts_and_serves_from_a_read_only_store(trained: Trained, tmpfs_store: Tmpfs) -> None:
    store_all_candles(trained)
    champion = save(trained, "direction_small", status="active")
    predict = {"X-API-Key": keys.create_key("predict")}
    tmpfs_store.read_only(True)
    try:
        with serve() as url, httpx.Client(base_url=url, timeout=30) as http:
            ready = http.get("/ready")
            answer = http.post("/predict/direction", json={"symbol": "BTC-USDT"}, headers=predict)
    finally:
        tmpfs_store.read_only(False)
    assert ready.status_code == 200 and ready.json()["models_loaded"] == 1
    assert answer.status_code == 200 and answer.json()["model"] == champion
