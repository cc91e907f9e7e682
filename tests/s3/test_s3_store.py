"""The S3 store on a real S3 server (SeaweedFS): round trips of every kind, tampering refused, whole or
nothing across a killed writer, orphans swept, one download per process, ensembles kept in the bucket."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from app.core.errors import IntegrityError, NotFound
from app.data.frames import candles_frame
from app.data.simulator import MarketSimulator
from app.ml.dataset import build_dataset
from app.ml.training import TrainingPipeline
from app.services.models import get_model, load_model, model_store, save_model, set_status, sweep_store
from app.store.blob_cache import BlobCache, blob_cache
from app.store.object_models import ObjectModelStore
from app.store.objects import object_store
from tests.store.test_kinds_roundtrip import SMALL, START_TS


@pytest.fixture(scope="module")
def candles() -> dict[str, pd.DataFrame]:
    raw = MarketSimulator(11).generate(["BTC-USDT", "ETH-USDT"], START_TS, 1500)
    return {symbol: candles_frame(frame) for symbol, frame in raw.items()}


@pytest.fixture(scope="module")
def trained(candles: dict[str, pd.DataFrame]) -> dict[str, Any]:
    pipeline = TrainingPipeline()
    return {kind: pipeline.train_model({"kind": kind, "config": config, "data_source": "simulated"}, candles)
            for kind, config in SMALL.items()}


def _keys(s3_client: Any, store: dict[str, str]) -> dict[str, bytes]:
    pages = s3_client.get_paginator("list_objects_v2").paginate(Bucket=store["bucket"],
                                                                 Prefix=store["prefix"] + "/")
    keys = [item["Key"] for page in pages for item in page.get("Contents", [])]
    return {k[len(store["prefix"]) + 1:]: s3_client.get_object(Bucket=store["bucket"], Key=k)["Body"].read()
            for k in keys}


def _put(s3_client: Any, store: dict[str, str], key: str, body: bytes) -> None:
    s3_client.put_object(Bucket=store["bucket"], Key=f"{store['prefix']}/{key}", Body=body)


@pytest.mark.parametrize("kind", list(SMALL))
def test_every_kind_round_trips_through_s3_and_nothing_lands_on_local_disk(
    kind: str, trained: dict[str, Any], candles: dict[str, pd.DataFrame], s3_store: dict[str, str],
    s3_client: Any,
) -> None:
    model = trained[kind]
    record = save_model(model)
    objects = _keys(s3_client, s3_store)
    manifest = json.loads(objects[f"models/{record.store_dir}/manifest.json"])
    assert manifest["files"] == record.artifact_sha256 and model.artifact_file in manifest["files"]
    for rel, sha in record.artifact_sha256.items():  # content-addressed: each object is named by its hash
        assert __import__("hashlib").sha256(objects[f"objects/{sha}"]).hexdigest() == sha, rel
    meta = json.loads(objects[f"models/{record.store_dir}/metadata.json"])
    assert meta["kind"] == kind and meta["name"] == record.name
    assert not list(Path(s3_store["local"]).glob("model_*")), "an S3 store must not write model dirs locally"

    loaded = load_model(record.name)
    ds = build_dataset(model, candles)
    before, after = model.outputs(ds.X, ds.meta), loaded.outputs(ds.X, ds.meta)
    np.testing.assert_array_equal(after[0], before[0])
    if before[1] is not None:
        np.testing.assert_array_equal(after[1], before[1])
    assert loaded.predict(current_features=candles["BTC-USDT"]) == model.predict(
        current_features=candles["BTC-USDT"])


def test_status_change_rewrites_metadata_in_the_bucket(
    trained: dict[str, Any], s3_store: dict[str, str], s3_client: Any
) -> None:
    record = save_model(trained["direction"])
    set_status(record.name, "active", "test")
    meta = json.loads(_keys(s3_client, s3_store)[f"models/{record.store_dir}/metadata.json"])
    assert meta["status"] == "active"
    load_model(record.name)  # a document that changed never makes the model unloadable


def test_a_changed_object_is_refused_on_a_cold_load(
    trained: dict[str, Any], s3_store: dict[str, str], s3_client: Any, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    model = trained["risk"]
    record = save_model(model)
    sha = record.artifact_sha256[model.artifact_file]
    data = bytearray(_keys(s3_client, s3_store)[f"objects/{sha}"])
    data[len(data) // 2] ^= 0x01  # one flipped bit, written straight to the bucket
    _put(s3_client, s3_store, f"objects/{sha}", bytes(data))
    with pytest.raises(IntegrityError, match=model.artifact_file):
        load_model(record.name)
    assert not (Path(s3_store["BLOB_CACHE_DIR"]) / "blobs" / sha).exists(), "a bad download is never cached"


def test_a_changed_manifest_or_cached_blob_is_never_loaded(
    trained: dict[str, Any], s3_store: dict[str, str], s3_client: Any
) -> None:
    model = trained["direction"]
    record = save_model(model)
    load_model(record.name)  # now cached
    cache = Path(s3_store["BLOB_CACHE_DIR"])
    sha = record.artifact_sha256[model.artifact_file]
    blob = cache / "blobs" / sha
    blob.write_bytes(blob.read_bytes()[:-10])  # a local cache file cut short (hard-linked into the dir)
    downloads = blob_cache().downloads
    load_model(record.name)  # refetched from S3, verified again: the cache is only a cache
    assert blob_cache().downloads == downloads + 1
    assert __import__("hashlib").sha256(blob.read_bytes()).hexdigest() == sha

    manifest_key = f"models/{record.store_dir}/manifest.json"
    manifest = json.loads(_keys(s3_client, s3_store)[manifest_key])
    manifest["files"]["extra.bin"] = sha
    _put(s3_client, s3_store, manifest_key, json.dumps(manifest).encode())
    cold = ObjectModelStore(object_store(), BlobCache(cache.parent / "other-cache"))
    with pytest.raises(IntegrityError, match="manifest"):
        cold.read_verified(record.store_dir, record.artifact_sha256)


def test_concurrent_writers_claim_distinct_numbers(s3_store: dict[str, str]) -> None:
    store = model_store()
    names: list[str] = []

    def write(i: int) -> None:
        def build(directory: Path) -> None:
            (directory / "model.json").write_text(json.dumps({"i": i}))
        names.append(store.write(build)[0])

    threads = [threading.Thread(target=write, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(names) == [f"model_{n:03d}" for n in range(1, 7)]
    assert store.list_dirs() == sorted(names)


_KILLED_WRITER = textwrap.dedent("""
    import os, signal, sys
    import numpy as np, pandas as pd
    from app.services import models
    from app.store.object_models import ObjectModelStore
    from tests.services.test_models_service import TinyLinear

    where = sys.argv[1]
    if where == "before_manifest":  # every object uploaded, the manifest never written
        ObjectModelStore._claim = lambda self, manifest: os.kill(os.getpid(), signal.SIGKILL)
    else:  # the manifest written, the database row never committed
        original = ObjectModelStore.write
        def write(self, build):
            original(self, build)
            os.kill(os.getpid(), signal.SIGKILL)
        ObjectModelStore.write = write
    X = pd.DataFrame(np.random.default_rng(0).normal(size=(50, 3)), columns=["a", "b", "c"])
    models.save_model(TinyLinear().fit(X, X["a"].to_numpy()), name="tiny")
""")


@pytest.mark.parametrize("where", ["before_manifest", "after_manifest"])
def test_a_writer_killed_mid_upload_leaves_nothing_loadable_and_the_sweep_removes_it(
    where: str, s3_store: dict[str, str], s3_client: Any
) -> None:
    root = Path(__file__).resolve().parents[2]
    proc = subprocess.run([sys.executable, "-c", _KILLED_WRITER, where], cwd=root, env=dict(os.environ),
                          capture_output=True, timeout=60)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()[-2000:]
    left = _keys(s3_client, s3_store)
    assert any(k.startswith("objects/") for k in left), "the writer died after uploading its objects"
    with pytest.raises(NotFound):
        get_model("tiny_001")
    store = model_store()
    if where == "before_manifest":
        assert store.list_dirs() == [] and not any(k.startswith("models/") for k in left)
        with pytest.raises(NotFound):
            store.read_verified("model_001", {"model.json": "0" * 64})
    else:
        assert store.list_dirs() == ["model_001"]  # published, but no row names it: nobody loads it

    assert sweep_store(older_than_s=3600) == {"tmp": [], "orphans": [], "metadata": []}  # too young
    swept = sweep_store(older_than_s=0)
    assert swept["orphans"] == ([] if where == "before_manifest" else ["model_001"])
    assert _keys(s3_client, s3_store) == {}, "every orphaned object and document is swept"


def test_the_sweep_keeps_everything_a_row_names(
    trained: dict[str, Any], s3_store: dict[str, str], s3_client: Any
) -> None:
    kept = save_model(trained["direction"])
    _put(s3_client, s3_store, "objects/" + "ab" * 32, b"left by a dead writer")
    swept = sweep_store(older_than_s=0)
    assert swept["tmp"] == ["objects/" + "ab" * 32] and swept["orphans"] == []
    load_model(kept.name)
    assert set(_keys(s3_client, s3_store)) == {
        *(f"objects/{sha}" for sha in kept.artifact_sha256.values()),
        f"models/{kept.store_dir}/manifest.json", f"models/{kept.store_dir}/metadata.json"}


def test_a_promotion_costs_one_download_per_process(
    trained: dict[str, Any], s3_store: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from app.core.config import reset_settings
    from app.store.cache import ModelCache

    first = save_model(trained["direction"], name="direction_a")
    set_status(first.name, "active", "test")
    api = ModelCache()
    before = blob_cache().downloads
    api.reload("test")
    assert blob_cache().downloads - before == len(first.artifact_sha256)
    api.reload("again")
    api._snapshot = type(api.snapshot)({}, {})  # forget the in-memory models: the disk cache still holds
    api.reload("restart")
    assert blob_cache().downloads - before == len(first.artifact_sha256), "verified local copies are reused"

    second = save_model(trained["risk"], name="risk_a")
    set_status(second.name, "active", "promoted")
    api.reload("promotion")
    assert blob_cache().downloads - before == len(first.artifact_sha256) + len(second.artifact_sha256)
    assert set(api.snapshot.champions.values()) == {first.name, second.name}

    monkeypatch.setenv("BLOB_CACHE_DIR", str(tmp_path / "another-process"))  # another API host
    reset_settings()
    ModelCache().reload("other host")
    assert blob_cache().downloads == len(first.artifact_sha256) + len(second.artifact_sha256)


def test_ensembles_live_in_the_bucket(
    trained: dict[str, Any], s3_store: dict[str, str], s3_client: Any
) -> None:
    from app.api.schemas import EnsembleCreate
    from app.services import ensembles
    from app.store.cache import ModelCache

    names = [save_model(trained["direction"], name=f"direction_{f}").name for f in ("x", "y")]
    for name in names:
        set_status(name, "active", "test")
    cache = ModelCache()
    cache.reload("test")
    created = ensembles.create(EnsembleCreate(members=names, weights=[0.7, 0.3]), cache)
    stored = json.loads(_keys(s3_client, s3_store)[f"ensembles/{created.name}.json"])
    assert stored["models"] == names and stored["weights"] == pytest.approx([0.7, 0.3])
    dropped = {**stored, "name": "ensemble_009", "weights": [0.5, 0.5]}  # a config dropped in the bucket
    _put(s3_client, s3_store, "ensembles/ensemble_009.json", json.dumps(dropped).encode())
    listed = {e.name: e for e in ensembles.list_ensembles()}
    assert set(listed) == {created.name, "ensemble_009"} and listed["ensemble_009"].id is None
    assert ensembles.get_ensemble("ensemble_009", register=True).id is not None
    assert not (Path(s3_store["local"]) / "ensembles").exists()


def test_reports_and_plots_have_their_prefix_in_the_bucket(s3_store: dict[str, str], s3_client: Any) -> None:
    from app.core.errors import BadInput
    from app.store.reports import get_report, list_reports, put_report

    put_report("replays", "rp_0001.json", b'{"id": "rp_0001"}')
    put_report("plots", "skill.svg", b"<svg/>")
    assert set(_keys(s3_client, s3_store)) == {"reports/replays/rp_0001.json", "reports/plots/skill.svg"}
    assert get_report("replays", "rp_0001.json") == b'{"id": "rp_0001"}'
    assert get_report("plots", "x.png") is None
    assert list_reports("replays") == ["rp_0001.json"]
    with pytest.raises(BadInput):
        put_report("replays", "../escape.json", b"")


def test_migrate_creates_a_missing_bucket_once(s3_store: dict[str, str], s3_client: Any,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    import uuid

    from app.core.config import reset_settings
    from app.services.bootstrap import prepare_store

    bucket = f"fresh-{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("MODEL_STORE_URL", f"s3://{bucket}/artifacts")
    reset_settings()
    assert prepare_store() == f"s3://{bucket}/artifacts"
    assert prepare_store() == f"s3://{bucket}/artifacts"  # idempotent
    s3_client.head_bucket(Bucket=bucket)  # raises when it was not created
    try:
        record_dir, _ = model_store().write(lambda d: (d / "model.json").write_text("{}"))
        assert record_dir == "model_001"
    finally:
        for key in [o["Key"] for o in s3_client.list_objects_v2(Bucket=bucket).get("Contents", [])]:
            s3_client.delete_object(Bucket=bucket, Key=key)
        s3_client.delete_bucket(Bucket=bucket)


def test_wrong_credentials_are_a_clear_503(s3_store: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    from app.core.config import reset_settings
    from app.core.errors import Unavailable

    monkeypatch.setenv("S3_SECRET_ACCESS_KEY", "not-the-secret")
    reset_settings()
    with pytest.raises(Unavailable, match="object store s3://") as caught:
        model_store().write(lambda d: (d / "model.json").write_text("{}"))
    assert caught.value.status_code == 503


def test_pruning_the_blob_cache_never_drops_what_a_served_or_held_model_needs(
    trained: dict[str, Any], s3_store: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from app.core.config import reset_settings
    from app.services.models import prune_blob_cache
    from app.store.cache import ModelCache

    champion = save_model(trained["direction"], name="direction_a")
    set_status(champion.name, "active", "test")
    held = save_model(trained["price"], name="price_a")  # a candidate asked for by name: held in memory
    loose = save_model(trained["risk"], name="risk_a")  # loaded once (a worker's rank), then not held
    api = ModelCache()
    api.reload("test")
    api.resolve(held.name)
    load_model(loose.name)
    blobs = Path(s3_store["BLOB_CACHE_DIR"]) / "blobs"
    month_ago = __import__("time").time() - 30 * 86400
    for blob in blobs.iterdir():
        os.utime(blob, (month_ago, month_ago))
    monkeypatch.setenv("BLOB_CACHE_MAX_MB", "0.001")  # far below what the three take
    reset_settings()

    pruned = prune_blob_cache()
    cached = {p.name for p in blobs.iterdir()}
    kept = set(champion.artifact_sha256.values()) | set(held.artifact_sha256.values())
    assert pruned is not None
    assert set(pruned.removed) == set(loose.artifact_sha256.values()) - kept, "only the loose model's go"
    assert kept <= cached, "a blob a served or held model needs was pruned"

    downloads = blob_cache().downloads
    ModelCache().reload("restart")  # a restarted API process loads its champion from the cache alone
    assert blob_cache().downloads == downloads
    load_model(loose.name)  # the pruned one is fetched again, and verifies
    assert blob_cache().downloads == downloads + len(pruned.removed)
