"""Hot reload: a status change made elsewhere (a cycle in a worker) reaches the serving process within
seconds, while requests keep flowing and none fails."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import httpx
import pytest

from app.services.models import set_status
from app.store.cache import get_cache, notify_models_changed, reset_cache
from tests.api.ml_setup import Trained, api_keys, save, store_all_candles
from tests.api.server import serve


@pytest.fixture()
def base_url(trained: Trained) -> Iterator[str]:
    store_all_candles(trained)
    reset_cache()
    with serve() as url:
        yield url
    reset_cache()


def _hammer(url: str, headers: dict, seen: list, stop: threading.Event) -> None:
    with httpx.Client(base_url=url, timeout=10) as http:
        while not stop.is_set():
            r = http.post("/predict/direction", json={"symbol": "BTC-USDT"}, headers=headers)
            seen.append((time.monotonic(), r.status_code, r.json().get("model")))


@pytest.mark.parametrize("publish", [True, False], ids=["published", "db_poll_only"])
def test_champion_switches_under_load_without_a_failed_request(
    trained: Trained, base_url: str, publish: bool
) -> None:
    old = save(trained, "direction_small")
    new = save(trained, "direction_deep", status="candidate")
    keys = api_keys()
    get_cache().reload("test")
    seen: list = []
    stop = threading.Event()
    threads = [
        threading.Thread(target=_hammer, args=(base_url, keys["predict"], seen, stop)) for _ in range(3)
    ]
    for t in threads:
        t.start()
    started = time.monotonic()
    while len(seen) < 3 and time.monotonic() - started < 10:  # the old champion has answered (a loaded
        time.sleep(0.05)  # machine may take longer than half a second for the first features)
    time.sleep(0.2)

    switched_at = time.monotonic()
    set_status(new, "active", "retrained")  # as a cycle in a worker process does
    set_status(old, "superseded", "retrained")
    if publish:
        notify_models_changed(new, "active")
    deadline = switched_at + 10
    while time.monotonic() < deadline and not (seen and seen[-1][2] == new):
        time.sleep(0.05)
    time.sleep(0.3)
    stop.set()
    for t in threads:
        t.join()

    assert seen and all(status == 200 for _, status, _ in seen), {s for _, s, _ in seen}
    before = [m for t, _, m in seen if t < switched_at]
    after = [t for t, _, m in seen if m == new]
    assert before and set(before) == {old}
    assert after, "the new champion never answered"
    assert min(after) - switched_at < (2.5 if publish else 6.0)
    assert seen[-1][2] == new
