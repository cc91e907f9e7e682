"""The smaller faults found in review, each pinned by the behaviour a user sees."""

from __future__ import annotations

import re
import threading
import time
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
import yaml
from sqlalchemy import event

from app.core.config import reset_settings
from app.core.db import get_engine
from app.services import keys
from tests.api.ml_setup import Trained, save, store_all_candles
from tests.api.server import serve

ROOT = Path(__file__).resolve().parents[2]


@contextmanager
def statements() -> Iterator[list[str]]:
    """Every SQL statement the app sends while the block runs (same process, same engine)."""
    seen: list[str] = []

    def note(_conn, _cursor, statement, *_args) -> None:  # noqa: ANN001
        seen.append(" ".join(statement.split()).upper())

    engine = get_engine()
    event.listen(engine, "before_cursor_execute", note)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", note)


def _writes(seen: list[str]) -> list[str]:
    return [s for s in seen if s.startswith(("INSERT", "UPDATE", "DELETE"))]


@pytest.fixture()
def predict_key() -> str:
    keys.clear_cache()
    return keys.create_key("predict")


def test_a_flood_of_one_bad_key_costs_one_database_query(predict_key: str) -> None:
    with serve() as url, httpx.Client(base_url=url) as http, statements() as seen:
        answers = [http.get("/models", headers={"X-API-Key": "mlp_not-a-real-key"}).status_code
                   for _ in range(50)]
    assert answers == [401] * 50
    lookups = [s for s in seen if "FROM API_KEYS" in s]
    assert len(lookups) == 1, f"{len(lookups)} key lookups for 50 requests with one bad key"


def test_guessing_keys_costs_one_query_a_second_and_no_memory_per_guess(predict_key: str) -> None:
    with statements() as seen:
        started = time.monotonic()
        refused = [keys.verify(f"mlp_guess_{i}") for i in range(500)]
        seconds = time.monotonic() - started
    assert refused == [None] * 500
    lookups = [s for s in seen if "FROM API_KEYS" in s]
    assert len(lookups) <= 1 + int(seconds / keys.SNAPSHOT_SECONDS)
    assert len(keys._cache) == 0 and len(keys._snapshot[1]) == 1  # only the one valid key is held
    made = keys.create_key("predict")
    assert keys.verify(made) == "predict"  # a key made a moment ago is never refused


def test_a_feature_period_whose_warmup_spans_the_whole_history_is_a_fast_422(
    trained: Trained, predict_key: str
) -> None:
    store_all_candles(trained)
    with serve() as url, httpx.Client(base_url=url, timeout=30) as http:
        started = time.perf_counter()
        answer = http.get("/features/BTC-USDT", params={"names": "rsi_5000", "timeframe": "4h"},
                          headers={"X-API-Key": predict_key})
        seconds = time.perf_counter() - started
        fine = http.get("/features/BTC-USDT", params={"names": "rsi_14", "timeframe": "5m"},
                        headers={"X-API-Key": predict_key})
    assert answer.status_code == 422, answer.text
    assert "rsi_5000" in answer.json()["detail"] and "FEATURES_MAX_1M_BARS" in answer.json()["detail"]
    assert answer.json()["errors"][0]["field"] == "names"
    # a bound on the refusal (measured ~0.1 s alone, 0.6 s with the suite running in parallel)
    assert seconds < 2.0, f"the refusal took {seconds:.2f} s: it read candles first"
    assert fine.status_code == 200


def test_a_hot_reload_never_waits_for_a_model_being_loaded_by_name(
    trained: Trained, store_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from app.services import models
    from app.store.cache import ModelCache

    save(trained, "direction_small", status="active")
    by_name = save(trained, "direction_deep", status="candidate")
    cache = ModelCache()
    cache.reload("test")
    real_load = models.load_model

    def slow_load(name: str):  # noqa: ANN202 - a slow disk, for the model asked for by name only
        if name == by_name:
            time.sleep(2.0)
        return real_load(name)

    monkeypatch.setattr(models, "load_model", slow_load)
    loading = threading.Thread(target=cache.resolve, args=(by_name,))
    loading.start()
    time.sleep(0.3)
    started = time.perf_counter()
    cache.reload("status_change")
    waited = time.perf_counter() - started
    loading.join(timeout=10)
    assert waited < 1.0, f"the hot reload waited {waited:.2f} s for a model loaded by name"
    assert cache.resolve(by_name).name == by_name


def test_reading_cycles_and_ensembles_writes_nothing(
    trained: Trained, store_dir: Path, predict_key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from app.core.db import session_scope
    from app.ml.ensembles import EnsemblePredictor
    from app.services.cycle import lock as cycle_lock
    from app.tables.cycles import Cycle
    from app.tables.models import utcnow

    monkeypatch.setenv("CYCLE_LEASE_SECONDS", "0.1")
    reset_settings()
    with session_scope() as session:  # a cycle whose lock and jobs are gone (reads as interrupted)
        session.add(Cycle(id="lostcycle0001", status="running", stage="rank", heartbeat_ts=utcnow()))
    cycle_lock.release("lostcycle0001")
    names = [save(trained, "direction_small"), save(trained, "direction_deep")]
    EnsemblePredictor([trained.models["direction_small"], trained.models["direction_deep"]], method="voting",
                      names=names).save_config("ensemble_007", store_dir / "ensembles")  # dropped by hand
    time.sleep(0.2)
    headers = {"X-API-Key": predict_key}
    with serve() as url, httpx.Client(base_url=url) as http:
        http.get("/models", headers=headers)  # the key is verified and cached before counting
        with statements() as seen:
            cycles = http.get("/cycles", headers=headers)
            one = http.get("/cycles/lostcycle0001", headers=headers)
            ensembles = http.get("/ensembles", headers=headers)
            dropped = http.get("/ensembles/ensemble_007", headers=headers)
    assert _writes(seen) == [], f"GETs wrote: {_writes(seen)}"
    assert cycles.status_code == one.status_code == ensembles.status_code == dropped.status_code == 200
    assert one.json()["status"] == "interrupted" and cycles.json()[0]["status"] == "interrupted"
    assert [e["name"] for e in ensembles.json()] == ["ensemble_007"] and dropped.json()["id"] is None


def test_a_database_error_on_predict_is_a_503_naming_no_host(
    trained: Trained, store_dir: Path, predict_key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    store_all_candles(trained)
    save(trained, "direction_small", status="active")
    headers = {"X-API-Key": predict_key}
    with serve() as url, httpx.Client(base_url=url, timeout=30) as http:
        first = http.post("/predict/direction", json={"symbol": "BTC-USDT"}, headers=headers)
        assert first.status_code == 200, first.text
        monkeypatch.setenv("DATABASE_URL", "postgresql+psycopg://secretuser@127.0.0.1:9/nowhere")
        reset_settings()
        answer = http.post("/predict/direction", json={"symbol": "ETH-USDT"}, headers=headers)
    assert answer.status_code == 503, answer.text
    assert "database" in answer.json()["detail"]
    assert "secretuser" not in answer.text and "127.0.0.1" not in answer.text


def test_ready_names_what_failed_without_echoing_hosts_or_users(monkeypatch: pytest.MonkeyPatch) -> None:
    with serve() as url, httpx.Client(base_url=url, timeout=30) as http:
        monkeypatch.setenv("DATABASE_URL", "postgresql+psycopg://secretuser:hunter2@127.0.0.1:9/secretdb")
        reset_settings()
        answer = http.get("/ready")
    assert answer.status_code == 503
    assert answer.json()["failed"] == ["database"]
    for secret in ("secretuser", "hunter2", "secretdb", "127.0.0.1"):
        assert secret not in answer.text, f"/ready echoed {secret!r}: {answer.text}"
    # the port: ":9" followed by no digit or dot (a latency such as `"latency_ms":9.58` is not it)
    assert not re.search(r":9(?![\d.])", answer.text), f"/ready echoed the port: {answer.text}"


def test_a_retried_cycle_start_enqueues_each_build_once(
    store_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from app.core.queues import get_queue
    from app.services.cycle import get_cycle, start_cycle
    from tests.cycle.helpers import definition, run_workers, seed_candles
    from workers.cycle_jobs import cycle_start_job

    monkeypatch.setenv("MARKET_DATA_SOURCE", "csv")
    reset_settings()
    seed_candles(days=1, symbols=["BTC-USDT"])
    defs = [definition("gradient_boosting", "vol_a"), definition("xgboost", "dir_b")]
    cycle = start_cycle("operator", {"definitions": defs, "window_days": 1, "symbols": ["BTC-USDT"]})
    get_queue("cycle").empty()  # the start job runs here by hand: its first try, then RQ's retry of it
    cycle_start_job(cycle.id)
    cycle_start_job(cycle.id)

    assert get_queue("train").count == len(defs)
    run_workers()
    done = get_cycle(cycle.id)
    assert done.status == "succeeded", done.errors
    assert [done.progress[d["name"]]["attempts"] for d in defs] == [1, 1]


def test_dependency_floors_exclude_releases_without_the_fixes_we_rely_on() -> None:
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    floors = {d.split(">=")[0].split("[")[0].strip(): d.split(">=")[1].split(",")[0].strip()
              for d in deps if ">=" in d}

    def version(text: str) -> tuple[int, ...]:
        return tuple(int(p) for p in text.split("."))

    assert version(floors["skops"]) >= (0, 12), "skops < 0.12 loads untrusted types (trusted-type bypass)"
    assert version(floors["psycopg"]) >= (3, 2), "the client-side read deadline needs psycopg 3.2"
    assert version(floors["redis"]) >= (8, 0), "the floor we test the Redis timeouts with"


def test_compose_runs_redis_with_a_password_and_gives_postgres_no_default_password() -> None:
    text = (ROOT / "docker-compose.yml").read_text()
    compose = yaml.safe_load(text)
    redis = compose["services"]["redis"]
    assert "--requirepass" in redis["command"]
    assert "ports" not in redis and "ports" not in compose["services"]["postgres"]
    app_env = compose["x-app"]["environment"]
    assert app_env["REDIS_URL"].startswith("redis://:${REDIS_PASSWORD:?")
    assert "${POSTGRES_PASSWORD:?" in app_env["DATABASE_URL"]
    postgres_password = compose["services"]["postgres"]["environment"]["POSTGRES_PASSWORD"]
    assert postgres_password.startswith("${POSTGRES_PASSWORD:?")
    assert ":-mlpipe}" not in text, "a default password is still there"
