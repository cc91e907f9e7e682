"""Scoring a replay's periods ahead (app/services/replay/ahead.py): which periods get queued after each
step, that a prefix of steps serves what the whole replay serves, and when a core counts as idle."""

from __future__ import annotations

import numpy as np
import pandas as pd

from app.ml.dataset import Dataset
from app.ml.evaluation import Scored
from app.services.replay.ahead import Periods, _slim, core_idle
from app.services.replay.score import policy_models


def _step(i: int, champion: str | None, fits: list[str], skills: list[float]) -> dict:
    return {"step_ms": i * 1000, "as_of_ms": i * 1000 - 1, "champions": {"direction": champion} if champion
            else {}, "fits": {"direction": fits}, "validation": {n: {"skill": s} for n, s in zip(fits, skills,
                                                                                              strict=True)}}


STEPS = [_step(0, None, ["a0"], [0.1]), _step(1, "a0", ["a1", "b1"], [0.0, 0.2]),
         _step(2, "b1", ["a2"], [0.3]), _step(3, "b1", [], [])]


def test_the_policies_of_a_prefix_of_steps_are_the_prefix_of_the_whole() -> None:
    whole = policy_models(STEPS)
    for n in range(1, len(STEPS) + 1):
        part = policy_models(STEPS[:n])
        assert {k: {p: v[:n] for p, v in policies.items()} for k, policies in whole.items()} == part


def test_each_model_and_period_is_queued_once_however_many_policies_serve_it() -> None:
    periods = Periods(12 * 3_600_000, ["BTC-USDT"])
    queued = []
    for n in range(1, len(STEPS) + 1):
        periods.ahead(STEPS[:n])
        queued += periods._waiting
        periods._waiting = []  # (not released: nothing is scored here)
    whole = policy_models(STEPS)["direction"]
    expected = {(name, STEPS[i]["as_of_ms"])
                for names in whole.values() for i, name in enumerate(names) if name}
    assert len(queued) == len(set(queued)) and set(queued) == expected
    assert ("a0", 999) in expected  # served and freeze_first both serve a0 after step 1: queued once


def test_a_core_is_idle_when_a_worker_or_a_core_has_nothing_to_do() -> None:
    building = {"stage": "build", "models": 5, "done": 2}
    assert not core_idle(building, workers=2, cores=2)  # both workers build
    assert core_idle({**building, "done": 4}, workers=2, cores=2)  # the last build runs
    assert core_idle({"stage": "rank", "models": 5, "done": 5}, workers=2, cores=2)
    assert not core_idle({"stage": "ingest", "models": 0, "done": 0}, workers=2, cores=2)
    assert core_idle(building, workers=1, cores=2)  # one worker on two cores
    assert not core_idle({"event": "step"}, workers=1, cores=2)


def test_a_slimmed_period_keeps_what_the_report_reads() -> None:
    meta = pd.DataFrame({"symbol": ["BTC-USDT"] * 3, "ts_ms": [1, 2, 3]})
    ds = Dataset(pd.DataFrame({"f": [1.0, 2.0, 3.0]}), np.array([0, 1, 1]), meta)
    scored = Scored(ds, np.array([0, 1, 0]), None, None, {"prior": np.full(3, 0.5)}, np.ones(3),
                    {"prior": np.full(3, 0.25)}, "prior", False)
    slim = _slim(scored)
    assert slim.ds.X.shape == (3, 0) and (slim.ds.y == ds.y).all() and slim.ds.meta is meta
    a, b = scored.rows("m", 1, 60_000), slim.rows("m", 1, 60_000)
    assert (a.loss == b.loss).all() and (a.ts_ms == b.ts_ms).all() and (a.symbol == b.symbol).all()
    assert _slim(None) is None


def _period(start: int, rng: np.random.Generator) -> Scored:
    ts = np.repeat(np.arange(start, start + 120) * 60_000, 2)
    meta = pd.DataFrame({"symbol": ["BTC-USDT", "ETH-USDT"] * 120, "ts_ms": ts})
    y = rng.integers(0, 2, 240)
    p1 = np.clip(0.5 + 0.2 * (y - 0.5) + rng.normal(0, 0.2, 240), 0.01, 0.99)
    prior = np.full(240, 0.5)
    return Scored(Dataset(pd.DataFrame(index=range(240)), y, meta), (p1 > 0.5).astype(int), None, p1,
                  {"prior": prior, "other": np.full(240, 0.45)}, (p1 - y) ** 2,
                  {"prior": (prior - y) ** 2, "other": (0.45 - y) ** 2}, "prior", False)
