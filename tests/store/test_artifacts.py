"""The artifact store: atomic publication, distinct directories when racing, refusal of changed files."""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

import pytest

from app.core.errors import BadInput, IntegrityError, NotFound
from app.store.artifacts import ModelStore, sha256_file


def _build(payload: str):
    def build(directory: Path) -> None:
        (directory / "model.json").write_text(json.dumps({"payload": payload}))
        (directory / "config.json").write_text("{}")

    return build


def test_write_publishes_numbered_directory_with_hash_of_every_file(tmp_path: Path) -> None:
    store = ModelStore(tmp_path)
    first, hashes = store.write(_build("a"))
    second, _ = store.write(_build("b"))
    assert (first, second) == ("model_001", "model_002")
    assert set(hashes) == {"model.json", "config.json"}
    assert hashes["model.json"] == sha256_file(tmp_path / first / "model.json")
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".tmp-")]


def test_build_that_raises_publishes_nothing_and_leaves_no_temp_dir(tmp_path: Path) -> None:
    store = ModelStore(tmp_path)

    def broken(directory: Path) -> None:
        (directory / "model.json").write_text("half")
        raise RuntimeError("fit exploded")

    with pytest.raises(RuntimeError, match="fit exploded"):
        store.write(broken)
    assert list(tmp_path.iterdir()) == []
    assert store.list_dirs() == []


def test_empty_build_is_refused(tmp_path: Path) -> None:
    with pytest.raises(BadInput, match="no files"):
        ModelStore(tmp_path).write(lambda directory: None)


def test_concurrent_writers_get_distinct_complete_directories(tmp_path: Path) -> None:
    store = ModelStore(tmp_path)
    writers = 8
    barrier = threading.Barrier(writers)
    results: dict[int, str] = {}

    def build_for(i: int):
        def build(directory: Path) -> None:
            _build(str(i))(directory)
            barrier.wait(timeout=10)  # every writer renames at about the same moment

        return build

    def run(i: int) -> None:
        results[i] = store.write(build_for(i))[0]

    threads = [threading.Thread(target=run, args=(i,)) for i in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert len(set(results.values())) == writers
    for i, name in results.items():
        assert json.loads((tmp_path / name / "model.json").read_text()) == {"payload": str(i)}


def test_writer_that_loses_the_race_for_a_number_takes_the_next(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = ModelStore(tmp_path)
    store.write(_build("first"))
    monkeypatch.setattr(store, "_highest_number", lambda: 0)  # a stale view of the directory
    name, _ = store.write(_build("second"))
    assert name == "model_002"
    assert json.loads((tmp_path / "model_001" / "model.json").read_text()) == {"payload": "first"}


def test_read_verified_accepts_untouched_files(tmp_path: Path) -> None:
    store = ModelStore(tmp_path)
    name, hashes = store.write(_build("a"))
    assert store.read_verified(name, hashes) == tmp_path / name


def test_modified_file_is_refused_naming_the_file(tmp_path: Path) -> None:
    store = ModelStore(tmp_path)
    name, hashes = store.write(_build("a"))
    (tmp_path / name / "model.json").write_text(json.dumps({"payload": "evil"}))
    with pytest.raises(IntegrityError, match=r"model_001/model\.json was modified"):
        store.read_verified(name, hashes)


def test_missing_file_is_refused_naming_the_file(tmp_path: Path) -> None:
    store = ModelStore(tmp_path)
    name, hashes = store.write(_build("a"))
    (tmp_path / name / "config.json").unlink()
    with pytest.raises(IntegrityError, match=r"config\.json is missing"):
        store.read_verified(name, hashes)


def test_added_file_is_refused(tmp_path: Path) -> None:
    store = ModelStore(tmp_path)
    name, hashes = store.write(_build("a"))
    (tmp_path / name / "model.pkl").write_bytes(b"not ours")
    with pytest.raises(IntegrityError, match=r"model\.pkl"):
        store.read_verified(name, hashes)


def test_missing_directory_and_path_escape_are_refused(tmp_path: Path) -> None:
    store = ModelStore(tmp_path)
    with pytest.raises(NotFound):
        store.read_verified("model_007", {"model.json": "0" * 64})
    with pytest.raises(BadInput):
        store.read_verified("../etc", {})


def test_documents_are_swapped_atomically_and_never_verified(tmp_path: Path) -> None:
    store = ModelStore(tmp_path)
    name, hashes = store.write(_build("a"))
    (tmp_path / name / "metadata.json").write_text('{"status": "candidate"}')
    store.write_document(name, "metadata.json", b'{"status": "active"}')
    assert store.read_verified(name, hashes)
    assert store.read_document(name, "metadata.json") == b'{"status": "active"}'
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".tmp-")] == []
    with pytest.raises(BadInput, match="not a document"):
        store.write_document(name, "config.json", b"{}")


def test_readers_ignore_temp_dirs_and_cleanup_removes_only_stale_ones(tmp_path: Path) -> None:
    store = ModelStore(tmp_path)
    store.write(_build("a"))
    stale, fresh = tmp_path / ".tmp-crashed", tmp_path / ".tmp-live"
    for directory in (stale, fresh):
        directory.mkdir()
        (directory / "model.json").write_text("partial")
    old = time.time() - 7200
    os.utime(stale, (old, old))
    assert store.list_dirs() == ["model_001"]
    assert store.write(_build("b"))[0] == "model_002"
    assert store.cleanup_stale_tmp(older_than_s=3600) == [".tmp-crashed"]
    assert fresh.exists() and not stale.exists()
