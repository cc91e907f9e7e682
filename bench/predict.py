"""Benchmark POST /predict/direction on one real uvicorn server, beside a bare constant endpoint.

    .venv/bin/python bench/predict.py            # SQLite + embedded Redis under a temp store
    DATABASE_URL=postgresql+psycopg://... REDIS_URL=redis://... .venv/bin/python bench/predict.py

Trains a small direction model on simulated candles, stores it as the champion, starts
`uvicorn bench.predict:bench_app --factory` (the real app plus `GET /bench/constant`), then measures,
all against that one server: server-side features and features in the body at concurrency 1 and 32,
the bare endpoint at the same concurrencies, and the in-process model call alone.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
KEY = "mlp_bench_predict_key_0123456789"


def bench_app():  # noqa: ANN201 - uvicorn factory
    from app.main import create_app

    app = create_app()

    @app.get("/bench/constant")
    def constant() -> dict[str, str]:
        return {"direction": "UP"}

    return app


def _setup() -> tuple[dict, list[float]]:
    from app.core.config import reset_settings

    reset_settings()
    from sqlmodel import SQLModel

    import app.tables  # noqa: F401
    from app.core.db import get_engine
    from app.data.candles import store_candles
    from app.data.frames import candles_frame
    from app.data.simulator import MarketSimulator
    from app.ml.dataset import build_dataset
    from app.ml.dissimilarity import attach_reference
    from app.ml.kinds import DirectionPredictor
    from app.services.models import save_model, set_status

    SQLModel.metadata.create_all(get_engine())
    raw = MarketSimulator(11).generate(["BTC-USDT"], 1_767_225_600_000, 2000)
    store_candles("BTC-USDT", raw["BTC-USDT"], "simulated")
    candles = {"BTC-USDT": candles_frame(raw["BTC-USDT"])}
    model = DirectionPredictor(n_estimators=100, max_depth=6, horizon=3).train_on(
        candles, data_source="simulated"
    )
    ds = build_dataset(model, candles)
    attach_reference(model, ds.X[ds.ts_ms <= model.training_["train_end_ms"]])
    record = save_model(model, name="direction_bench")
    set_status(record.name, "active", "benchmark")
    features = ds.X.iloc[-1].to_dict()
    # the in-process model call alone, on the same row the server computes
    from app.ml.dataset import latest_rows
    from app.services.models import load_model

    loaded = load_model(record.name)
    row, _ = latest_rows(loaded, candles["BTC-USDT"])
    tail = candles["BTC-USDT"].iloc[-61:]
    times = []
    for _ in range(300):
        t = time.perf_counter()
        loaded.answer(row, tail)
        times.append(time.perf_counter() - t)
    return features, times


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def _run(url: str, method: str, path: str, body: dict | None, concurrency: int, total: int) -> dict:
    import httpx

    latencies: list[float] = []
    errors = 0
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, limits=limits, headers={"X-API-Key": KEY}, timeout=30) as http:
        for _ in range(20):  # warm-up (and the first feature computation)
            await http.request(method, path, json=body)
        remaining = total

        async def worker() -> None:
            nonlocal remaining, errors
            while remaining > 0:
                remaining -= 1
                t = time.perf_counter()
                r = await http.request(method, path, json=body)
                latencies.append(time.perf_counter() - t)
                if r.status_code != 200:
                    errors += 1

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - start
    latencies.sort()
    return {
        "p50_ms": 1000 * statistics.median(latencies),
        "p99_ms": 1000 * latencies[int(0.99 * (len(latencies) - 1))],
        "rps": len(latencies) / elapsed,
        "errors": errors,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=1000, help="requests per scenario at concurrency 32")
    args = parser.parse_args()
    store = Path(tempfile.mkdtemp(prefix="mlpipe-bench-"))
    os.environ.setdefault("MODEL_STORE_DIR", str(store))
    os.environ["PREDICT_API_KEY"] = KEY
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    features, model_times = _setup()
    from app.core.redis import redis_url

    env = {**os.environ, "REDIS_URL": redis_url(), "PYTHONPATH": str(ROOT)}
    port = _free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "bench.predict:bench_app",
            "--factory",
            "--port",
            str(port),
            "--log-level",
            "warning",
            "--no-access-log",
        ],
        cwd=ROOT,
        env=env,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        import httpx

        for _ in range(200):
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        scenarios = [
            ("bare constant", "GET", "/bench/constant", None),
            ("predict, server-side features", "POST", "/predict/direction", {"symbol": "BTC-USDT"}),
            (
                "predict, features in body",
                "POST",
                "/predict/direction",
                {"symbol": "BTC-USDT", "features": features},
            ),
        ]
        rows = []
        for concurrency, total in ((1, max(200, args.requests // 4)), (32, args.requests)):
            for label, method, path, body in scenarios:
                result = asyncio.run(_run(url, method, path, body, concurrency, total))
                rows.append((label, concurrency, result))
    finally:
        server.terminate()
        server.wait(timeout=10)
        from app.core.redis import shutdown_embedded

        shutdown_embedded()  # the embedded Redis this run started, if any
    model_times.sort()
    print(
        f"in-process model.answer alone: p50 {1000 * statistics.median(model_times):.3f} ms, "
        f"p99 {1000 * model_times[int(0.99 * (len(model_times) - 1))]:.3f} ms"
    )
    print(f"{'scenario':34} {'conc':>4} {'p50 ms':>8} {'p99 ms':>8} {'req/s':>8} {'errors':>6}")
    bare = {c: r["rps"] for label, c, r in rows if label == "bare constant"}
    for label, c, r in rows:
        share = f"  ({100 * r['rps'] / bare[c]:.0f}% of bare)" if label != "bare constant" else ""
        print(
            f"{label:34} {c:>4} {r['p50_ms']:>8.2f} {r['p99_ms']:>8.2f} {r['rps']:>8.0f} {r['errors']:>6}"
            f"{share}"
        )


if __name__ == "__main__":
    main()
