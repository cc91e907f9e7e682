"""A whole cycle through real Redis and a real RQ worker, on simulated candles."""

from __future__ import annotations

import json
from pathlib import Path

from sqlmodel import select

from app.core.db import session_scope
from app.services.cycle import get_cycle, start_cycle
from app.services.cycle import lock as cycle_lock
from app.store.artifacts import sha256_file
from app.tables.models import ModelEvent, ModelRecord
from tests.cycle.helpers import definition, one_per_kind, run_workers, seed_candles


def _records() -> list[ModelRecord]:
    with session_scope() as session:
        return list(session.exec(select(ModelRecord)).all())


def test_full_cycle_ranks_champions_archives_the_surplus_and_matches_the_store(store_dir: Path) -> None:
    seed_candles(days=2)
    extra = [
        definition("xgboost", "xgb_deep", max_depth=4),
        definition("random_forest", "rf_wide"),
        definition("svm", "svm_b", C=0.5),
        definition("gradient_boosting", "gb_b", max_iter=25),
    ]
    first = one_per_kind()
    cycle = start_cycle("operator", {"definitions": first + extra, "window_days": 2})
    assert cycle.status == "queued"

    run_workers()

    done = get_cycle(cycle.id)
    assert done.status == "succeeded", done.errors
    assert done.stage == "done"
    assert cycle_lock.holder() is None, "a finished cycle must release its lock"
    assert {p["state"] for p in done.progress.values()} == {"succeeded"}
    assert set(done.timings["jobs"]) >= {"ingest", "rank", "drift", "finish"} | {
        f"build:{d}" for d in done.progress
    }

    records = _records()
    assert len(records) == 9
    by_status: dict[str, list[ModelRecord]] = {}
    for r in records:
        by_status.setdefault(r.status, []).append(r)
    active = by_status["active"]
    # one champion per kind: its first declared definition, unless another was better on a test at 5%
    assert sorted(r.kind for r in active) == ["direction", "momentum", "price", "risk", "volatility"]
    decisions = done.results["ranking"]["champion_decisions"]
    for r in active:
        decision = decisions[r.kind]["decision"]
        assert decision["defender"].removesuffix("_001") in {d["name"] for d in first}
        won = [t for t in decision["tests"] if t["b"] == r.name]
        assert r.name == decision["defender"] or (won and won[0]["p_value"] < 0.05)
    # 9 not archived > 7: the lowest two non-active ones are archived, the rest stay candidates
    archived = by_status["archived"]
    candidates = by_status["candidate"]
    assert len(archived) == 2 and len(candidates) == 2
    assert max(a.score for a in archived) <= min(c.score for c in candidates)
    with session_scope() as session:
        events = list(session.exec(select(ModelEvent).where(ModelEvent.cycle_id == cycle.id)).all())
    promoted = {e.model_name for e in events if e.event == "promoted"}
    assert promoted == {r.name for r in active}
    archived_events = [e for e in events if e.event == "archived"]
    assert sorted(e.model_name for e in archived_events) == sorted(r.name for r in archived)
    assert all("score" in e.numbers and e.reason for e in archived_events)

    # the database and the store agree: every row's directory with its hashes, and no orphan directory
    dirs = {p.name for p in store_dir.iterdir() if p.is_dir() and p.name.startswith("model_")}
    assert dirs == {r.store_dir for r in records}
    for r in records:
        for rel, digest in r.artifact_sha256.items():
            assert sha256_file(store_dir / r.store_dir / rel) == digest
        meta = json.loads((store_dir / r.store_dir / "metadata.json").read_text())
        assert meta["name"] == r.name and meta["status"] == r.status
