"""POST /tuning while Redis (the queue of trial jobs) is down: a fast 503 naming Redis, counted in
`mlpipe_tuning_starts_lost_total`, and nothing left behind (no study row, no Optuna study); once Redis is
back the same request starts a study."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

import httpx
import optuna
import pytest
from sqlmodel import select

from app.core.config import get_settings
from app.core.db import session_scope
from app.services.tuning import storage
from app.tables.tuning import TuningStudy
from tests.api.ml_setup import api_keys
from tests.api.server import serve
from tests.faults.stack import RedisServer, using
from tests.tuning.helpers import seed

LOST = re.compile(r'^mlpipe_tuning_starts_lost_total\{reason="redis",trigger="api"\} (\S+)$', re.MULTILINE)


@pytest.fixture()
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer()
    settings = get_settings()
    with using(settings.resolved_database_url, server.url, settings.model_store_dir):
        yield server
    server.stop()


def _lost(base_url: str) -> float:
    found = LOST.search(httpx.get(f"{base_url}/metrics", timeout=30).text)
    return float(found.group(1)) if found else 0.0


def _studies() -> tuple[list[str], list[str]]:
    with session_scope() as session:
        rows = [row.id for row in session.exec(select(TuningStudy)).all()]
    names = [n for n in optuna.get_all_study_names(storage.storage()) if n.startswith("mlpipe-st_")]
    return rows, names


BODY = {"definition": "direction_predictor", "trials": 3, "minutes": 1}  # a small study to start


def _timed_start(base_url: str, body: dict, headers: dict) -> tuple[httpx.Response, float]:
    """POST /tuning and its wall time."""
    began = time.monotonic()
    answer = httpx.post(f"{base_url}/tuning", json=body, headers=headers, timeout=30)
    return answer, time.monotonic() - began


def test_starting_a_study_with_redis_down_is_a_fast_503_counted_and_leaves_nothing(
    redis_server: RedisServer,
) -> None:
    seed(0.3)
    keys = api_keys()
    before = _studies()
    with serve() as base_url:
        lost_before = _lost(base_url)
        redis_server.stop()  # the real server is gone: connections are refused
        answer, took = _timed_start(base_url, BODY, keys["operator"])
        assert answer.status_code == 503, answer.text
        assert "Redis" in answer.json()["detail"] and answer.headers.get("Retry-After")
        assert took < 3.0, f"503 after {took:.1f} s"
        print(f"503 after {took:.2f} s")
        assert _studies() == before  # no row, no Optuna study
        assert _lost(base_url) == lost_before + 1

        redis_server.start()  # back: the same request starts a study
        answer = httpx.post(f"{base_url}/tuning", json=BODY, headers=keys["operator"], timeout=30)
        assert answer.status_code == 202, answer.text
        rows, names = _studies()
        assert answer.json()["id"] in rows and f"mlpipe-{answer.json()['id']}" in names
        assert _lost(base_url) == lost_before + 1


def test_redis_failing_between_the_first_write_and_the_trial_jobs_undoes_the_start(
    redis_server: RedisServer,
) -> None:
    """Redis answers the start's check, then stops taking writes (CLIENT PAUSE WRITE): the trial jobs
    time out, and the row and the Optuna study written before them are deleted again."""
    from redis import Redis

    seed(0.3)
    keys = api_keys()
    before = _studies()
    with serve() as base_url:
        lost_before = _lost(base_url)
        Redis.from_url(redis_server.url).execute_command("CLIENT", "PAUSE", "20000", "WRITE")
        answer, took = _timed_start(base_url, BODY, keys["operator"])
        Redis.from_url(redis_server.url).execute_command("CLIENT", "UNPAUSE")
        assert answer.status_code == 503, answer.text
        assert "Redis" in answer.json()["detail"]
        assert took < 8.0, f"503 after {took:.1f} s"
        print(f"503 after {took:.2f} s")
        assert _studies() == before
        assert _lost(base_url) == lost_before + 1


@pytest.mark.parametrize("outage", ["killed", "taking no writes"])
def test_resuming_a_study_with_redis_down_fails_fast_and_changes_nothing(
    redis_server: RedisServer, outage: str
) -> None:
    from redis import Redis
    from redis.exceptions import RedisError

    from app.services.tuning.studies import get_study, resume_study, set_status, start_study
    from tests.tuning.helpers import SPACE, options

    seed(2.1)
    study = start_study("direction_tuned", trials=2, minutes=1, options=options(), search_space=SPACE)
    set_status(study.id, "failed", error="its worker died")
    admin = Redis.from_url(redis_server.url)
    if outage == "killed":
        redis_server.stop()
    else:  # answers the check, then the trial jobs time out after the row was updated: it is put back
        admin.execute_command("CLIENT", "PAUSE", "20000", "WRITE")
    try:
        with pytest.raises(RedisError):
            resume_study(study.id, trials=2)
    finally:
        if outage != "killed":
            admin.execute_command("CLIENT", "UNPAUSE")
    after = get_study(study.id)
    assert after.status == "failed" and after.budget == study.budget and after.error == "its worker died"
