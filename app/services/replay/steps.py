"""Running a replay's steps: at each one the real cycle, on the candles known then, on the replay's workers.

A step at time T is a cycle started with `as_of_ms = T - 1 bar`: its window ends on the newest candle
that had closed at T, so no job of it reads a later candle (`cycle/data.anchor_ts`; every stage loads
candles only up to the window's end). What it decided (champions, switches, drift flags, retrains, the
fits it made) is kept in the replay's `state.json` as soon as the step ends, so a replay that stops is
resumed from the first step not done.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from app.core.errors import Unavailable
from app.core.logging import get_logger
from app.services.replay.workspace import Workspace

log = get_logger(__name__)

BAR_MS = 60_000
FINISHED = ("succeeded", "partial", "failed", "interrupted")
SHORT_STAGES = ("rank", "drift", "finish")  # a second or two each, one after another
Progress = Callable[[dict[str, Any]], None]


@contextmanager
def replay_workers(workspace: Workspace, count: int) -> Iterator[list[subprocess.Popen]]:
    """`count` RQ worker processes of the replay's world, stopped (SIGTERM, then SIGKILL) at the end."""
    import os

    env = {**os.environ, **workspace.env(), "LOG_LEVEL": "WARNING", "OMP_NUM_THREADS": "1"}
    if not workspace.redis_url:
        env.pop("REDIS_URL", None)
    log_file = (workspace.root / "workers.log").open("ab")
    workers = [subprocess.Popen(workspace.worker_command(), env=env, stdout=log_file, stderr=log_file)
               for _ in range(max(1, count))]
    try:
        yield workers
    finally:
        for worker in workers:
            worker.terminate()
        for worker in workers:
            try:
                worker.wait(timeout=20)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait()
        log_file.close()


def run_step(step_ms: int, spec: dict[str, Any], workers: list[subprocess.Popen],
             progress: Progress | None = None, timeout_s: float = 3600) -> dict[str, Any]:
    """One cycle as of `step_ms` in the active replay world; what it decided."""
    from app.services.cycle import get_cycle, start_cycle

    options = {
        "definitions": spec["definitions"],
        "symbols": spec["symbols"],
        "ingest": False,
        "as_of_ms": step_ms - BAR_MS,
    }
    if spec.get("window_days") is not None:
        options["window_days"] = spec["window_days"]
    cycle = start_cycle("replay", options)
    started = time.monotonic()
    while True:
        cycle = get_cycle(cycle.id)
        if progress is not None:
            progress({"step_ms": step_ms, "cycle_id": cycle.id, "stage": cycle.stage,
                      "done": sum(1 for p in cycle.progress.values()
                                  if p.get("state") in ("succeeded", "failed", "skipped")),
                      "models": len(cycle.progress)})
        if cycle.status in FINISHED:
            break
        if not any(w.poll() is None for w in workers):
            raise Unavailable("every replay worker stopped (see workers.log in the replay's directory)")
        if time.monotonic() - started > timeout_s:
            raise Unavailable(f"the cycle of step {step_ms} did not finish in {timeout_s:.0f} s")
        # every half second while it builds; closer near its end, where the next step waits on this one
        time.sleep(0.1 if cycle.stage in SHORT_STAGES else 0.5)
    return decisions_of(cycle, step_ms)


def decisions_of(cycle: Any, step_ms: int) -> dict[str, Any]:
    """What a step's cycle decided, in plain values (what the report and a resumed replay read)."""
    from app.services.models import list_models

    ranking = cycle.results.get("ranking") or {}
    drift = cycle.results.get("drift") or {}
    fits: dict[str, list[str]] = {}
    performance: dict[str, Any] = {}
    for record in list_models():
        if (record.training or {}).get("cycle_id") == cycle.id:
            fits.setdefault(record.kind, []).append(record.name)
            performance[record.name] = {k: record.performance.get(k)
                                        for k in ("skill", "skill_interval", "baseline", "n")}
    decisions = ranking.get("champion_decisions") or {}
    champions = dict(ranking.get("champions") or {})
    family = {r.name: r.family for r in list_models() if r.name in champions.values()}
    return {
        "step_ms": step_ms,
        "as_of_ms": step_ms - BAR_MS,
        "cycle_id": cycle.id,
        "status": cycle.status,
        "window": cycle.results.get("window"),
        "champions": champions,
        "champion_definitions": {kind: family.get(name) for kind, name in champions.items()},
        "switched": sorted(k for k, d in decisions.items() if (d.get("decision") or {}).get("switched")),
        "drift_flagged": sorted(n for n, e in drift.items() if isinstance(e, dict) and e.get("flagged")),
        "retrains": dict(cycle.results.get("retrains") or {}),
        "fits": fits,
        "validation": performance,
        "errors": [e.get("message") for e in cycle.errors if e.get("level") != "warning"],
    }
