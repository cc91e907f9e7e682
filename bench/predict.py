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
BATCH = ["BTC-USDT"] + [f"S{i:02d}-USDT" for i in range(1, 50)]  # 50 symbols in one call


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
    others = MarketSimulator(12).generate(BATCH[1:], 1_767_225_600_000 + 1000 * 60_000, 1000)
    for symbol, frame in others.items():  # the batch scenario's other 49 symbols, 1000 candles each
        store_candles(symbol, frame, "simulated")
    candles = {"BTC-USDT": candles_frame(raw["BTC-USDT"])}
    model = DirectionPredictor(n_estimators=100, max_depth=6, horizon=3).train_on(
        candles, data_source="simulated"
    )
    ds = build_dataset(model, candles)
    attach_reference(model, ds.X[ds.ts_ms <= model.training_["train_end_ms"]])
    record = save_model(model, name="direction_bench")
    set_status(record.name, "active", "benchmark")
    features = ds.X.iloc[-1].to_dict()
    from app.services.models import load_model

    loaded = load_model(record.name)
    if os.environ.get("BENCH_SKIP_IN_PROCESS") == "1":
        return features, {}
    return features, _in_process(loaded, candles)


def _time(call, n: int = 300) -> list[float]:  # noqa: ANN001
    for _ in range(30):
        call()
    times = []
    for _ in range(n):
        t = time.perf_counter()
        call()
        times.append(time.perf_counter() - t)
    return sorted(times)


def _in_process(direction, candles: dict) -> dict[str, list[float]]:  # noqa: ANN001
    """The model call alone for every kind (default hyperparameters), on the row the server computes;
    and the whole in-memory service call (model cache, feature-row cache, answer, log entry)."""
    from app.ml.base import context_values
    from app.ml.dataset import latest_rows
    from app.ml.kinds import MomentumClassifier, PricePredictor, RiskScorer, VolatilityRegressor

    out: dict[str, list[float]] = {}
    for model in (direction, MomentumClassifier(), RiskScorer(), VolatilityRegressor(), PricePredictor()):
        if model is not direction:
            model.train_on(candles, data_source="simulated")
        row, context = latest_rows(model, candles["BTC-USDT"])
        values = row[list(model.feature_names_)].to_numpy("float64")[0]
        ctx = context_values(context)
        out[f"{model.kind}.answer_values"] = _time(lambda m=model, v=values, c=ctx: m.answer_values(v, c))
    tail = candles["BTC-USDT"].iloc[-61:]
    frame_row = latest_rows(direction, candles["BTC-USDT"])[0]
    out["direction.answer (frame in)"] = _time(lambda: direction.answer(frame_row, tail))
    out["service predict_in_memory"] = _service_times()
    return out


def _service(n: int):  # noqa: ANN202
    from app.services import predictions
    from app.services.feature_rows import FeatureRowCache
    from app.store.cache import ModelCache

    cache, rows = ModelCache(), FeatureRowCache()
    cache.reload("bench")
    request = predictions.PredictInput(symbol="BTC-USDT")
    predictions.predict(cache, rows, "direction", request)  # computes and caches the features
    rows.ttl = 3600.0  # the newest-candle read stays fresh for the whole measurement

    def call() -> None:
        assert predictions.predict_in_memory(cache, rows, "direction", request) is not None

    return call


def _service_times() -> list[float]:
    return _time(_service(300))


def _asgi_calls(method: str, path: str, body: dict | None, n: int) -> float:
    """Seconds per request through the app's ASGI stack in this process (no sockets, no uvicorn)."""
    import json

    from app.store.cache import get_cache

    app = bench_app()
    get_cache().reload("bench")
    payload = json.dumps(body).encode() if body is not None else b""
    headers = [(b"x-api-key", KEY.encode()), (b"content-type", b"application/json"),
               (b"content-length", str(len(payload)).encode())]
    scope = {"type": "http", "http_version": "1.1", "method": method, "path": path, "raw_path": path.encode(),
             "query_string": b"", "headers": headers, "scheme": "http", "server": ("127.0.0.1", 80),
             "client": ("127.0.0.1", 1), "root_path": "", "app": app}

    async def run() -> float:
        async def receive() -> dict:
            return {"type": "http.request", "body": payload, "more_body": False}

        async def send(message: dict) -> None:
            if message["type"] == "http.response.start":
                assert message["status"] == 200, message

        for _ in range(200):
            await app(dict(scope), receive, send)
        start = time.perf_counter()
        for _ in range(n):
            await app(dict(scope), receive, send)
        return (time.perf_counter() - start) / n

    return asyncio.run(run())


def profile(n: int = 20_000) -> None:
    """Where the time of the in-memory service call goes (cProfile, sorted by own time)."""
    import cProfile
    import pstats

    call = _service(n)
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(n):
        call()
    profiler.disable()
    pstats.Stats(profiler).sort_stats("tottime").print_stats(18)
    bare = _asgi_calls("GET", "/bench/constant", None, 3000)
    served = _asgi_calls("POST", "/predict/direction", {"symbol": "BTC-USDT"}, 3000)
    print(f"through the ASGI app in process: bare {1e3 * bare:.3f} ms, predict (cached features) "
          f"{1e3 * served:.3f} ms, difference {1e3 * (served - bare):.3f} ms")
    profiler = cProfile.Profile()
    profiler.enable()
    _asgi_calls("POST", "/predict/direction", {"symbol": "BTC-USDT"}, 3000)
    profiler.disable()
    _where_a_request_goes(pstats.Stats(profiler), 3200, served)
    if os.environ.get("BENCH_PROFILE_ASGI") == "1":
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(40)


# (label, file ending, function): cumulative time of each under cProfile, per request
_PARTS = [
    ("whole request (ASGI app, middleware included)", "fastapi/applications.py", "__call__"),
    ("  FastAPI's routing and route handler", "fastapi/routing.py", "app"),
    ("    dependencies: key, caches, body validation", "fastapi/dependencies/utils.py", "solve_dependencies"),
    ("      of which the body's validation", "fastapi/dependencies/utils.py", "request_body_to_args"),
    ("    body read and JSON parse", "starlette/requests.py", "json"),
    ("    the route (app/api/routes/predict.py)", "app/api/routes/predict.py", "predict"),
    ("      service call (predict_in_memory)", "app/services/predictions.py", "predict_in_memory"),
    ("        model answer (answer_values)", "app/ml/base.py", "answer_values"),
    ("          flattened trees (fast_trees)", "app/ml/fast_trees.py", "totals"),
    ("        dissimilarity index", "app/ml/dissimilarity.py", "check"),
    ("        freshness check", "app/services/predictions.py", "check_fresh"),
    ("        feature-row cache look-up", "app/services/predictions.py", "memory_inputs"),
    ("        log entry", "app/services/predictions.py", "log_served"),
    ("        Prometheus metrics", "app/services/predictions.py", "_observe"),
    ("      JSON written (orjson)", "app/api/fast_json.py", "json_response"),
]


def _where_a_request_goes(stats, requests: int, unprofiled_s: float) -> None:  # noqa: ANN001
    """The profile as a table: per request, each part's cumulative time and its share of the whole."""
    found: dict[str, float] = {}
    for (filename, _line, name), (_cc, _nc, _tt, cumulative, _callers) in stats.stats.items():
        for label, ending, function in _PARTS:
            if name == function and filename.endswith(ending):
                found[label] = max(found.get(label, 0.0), cumulative)  # the outermost (e.g. routing's `app`)
    whole = found.get(_PARTS[0][0]) or 1.0
    print(f"where a cached predict request goes (cProfile, {requests} requests through the ASGI app; "
          f"unprofiled {1e3 * unprofiled_s:.3f} ms a request):")
    print("| part | profiled ms per request | share | share x unprofiled ms |\n|---|---|---|---|")
    for label, *_ in _PARTS:
        if label in found:
            t = found[label] / requests
            share = found[label] / whole
            scaled = 1e3 * unprofiled_s * share
            print(f"| {label.strip()} | {1e3 * t:.3f} | {100 * share:.0f}% | {scaled:.3f} |")


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
        for _ in range(5):  # warm-up (and the first feature computation)
            await http.request(method, path, json=body)
        remaining = total

        async def worker() -> None:
            nonlocal remaining, errors
            while remaining > 0:
                remaining -= 1
                t = time.perf_counter()
                try:
                    r = await http.request(method, path, json=body)
                except httpx.TransportError:  # counted, not fatal: a dropped connection is a failed request
                    errors += 1
                    continue
                latencies.append(time.perf_counter() - t)
                if r.status_code != 200:
                    errors += 1

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - start
    return {"latencies": latencies, "elapsed": elapsed, "errors": errors}


def _summary(parts: list[dict]) -> dict:
    latencies = sorted(x for p in parts for x in p["latencies"])
    return {
        "p50_ms": 1000 * statistics.median(latencies),
        "p99_ms": 1000 * latencies[int(0.99 * (len(latencies) - 1))],
        "rps": len(latencies) / sum(p["elapsed"] for p in parts),
        "errors": sum(p["errors"] for p in parts),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=1000, help="requests per scenario at concurrency 32")
    parser.add_argument("--profile", action="store_true", help="also profile the in-memory service call")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds of every scenario")
    parser.add_argument("--settle", type=float, default=10.0, help="seconds to wait after the API is up")
    parser.add_argument("--workers", type=int, default=1, help="API processes (as `mlpipe api --workers`)")
    parser.add_argument("--in-process", action="store_true", help="only the in-process figures (no server)")
    args = parser.parse_args()
    store = Path(tempfile.mkdtemp(prefix="mlpipe-bench-"))
    os.environ.setdefault("MODEL_STORE_DIR", str(store))
    os.environ["PREDICT_API_KEY"] = KEY
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    features, model_times = _setup()
    if args.in_process:
        for label, times in model_times.items():
            print(f"in-process {label:32} p50 {1000 * statistics.median(times):.3f} ms")
        if args.profile:
            profile()
        from app.core.redis import shutdown_embedded

        shutdown_embedded()
        return
    from app.core.redis import redis_url

    if args.workers > 1:
        from app.core.metrics import prepare_multiprocess_dir

        prepare_multiprocess_dir()  # as `mlpipe api --workers N` does
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
            "--workers",
            str(args.workers),
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
        time.sleep(args.settle)  # the API's feature processes finish importing before anything is timed
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
            chosen = scenarios + (
                [("predict, 50 symbols in one call", "POST", "/predict/direction", {"symbols": BATCH})]
                if concurrency == 1 else []
            )
            # Interleaved rounds: on a shared machine the load drifts, and each scenario sees the same drift.
            parts: dict[str, list[dict]] = {label: [] for label, *_ in chosen}
            for _ in range(args.rounds):
                for label, method, path, body in chosen:
                    n = max(20, total // args.rounds)
                    parts[label].append(asyncio.run(_run(url, method, path, body, concurrency, n)))
            rows += [(label, concurrency, _summary(parts[label])) for label, *_ in chosen]
    finally:
        server.terminate()
        server.wait(timeout=10)
        from app.core.redis import shutdown_embedded

        if args.profile:
            profile()
        shutdown_embedded()  # the embedded Redis this run started, if any
    for label, times in model_times.items():
        print(
            f"in-process {label:32} p50 {1000 * statistics.median(times):.3f} ms, "
            f"p99 {1000 * times[int(0.99 * (len(times) - 1))]:.3f} ms"
        )
    print(f"{'scenario':34} {'conc':>4} {'p50 ms':>8} {'p99 ms':>8} {'req/s':>8} {'errors':>6}")
    bare = {c: r["rps"] for label, c, r in rows if label == "bare constant"}
    single = {c: r["p50_ms"] for label, c, r in rows if label == "predict, server-side features"}
    for label, c, r in rows:
        share = f"  ({100 * r['rps'] / bare[c]:.0f}% of bare)" if label != "bare constant" else ""
        if "50 symbols" in label:
            share = f"  (p50 {r['p50_ms'] / single[c]:.1f}x one symbol's)"
        print(
            f"{label:34} {c:>4} {r['p50_ms']:>8.2f} {r['p99_ms']:>8.2f} {r['rps']:>8.0f} {r['errors']:>6}"
            f"{share}"
        )


if __name__ == "__main__":
    main()
