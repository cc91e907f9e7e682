"""The Replays page: cumulative out-of-sample skill per kind, against the naive baselines and the two
policies, over a replayed stretch of history.

The reports come from the replay service (`mlpipe replay`, `POST /replays`): every directory under
`<MODEL_STORE_DIR>/replays/` with a `report.json` (finished) or a `state.json` (running), read into the
small shape below. The policies' curves are put on the served champions' times.

A replay report (timestamps ISO-8601 UTC; every series has one value per replayed cycle, aligned on `ts`;
skill is against the strongest naive baseline, so that baseline's own line is 0):

    {"id": "rp_0003", "status": "running" | "finished" | "failed",
     "created_ts": "...", "finished_ts": "..." | null,
     "window": {"start": "...", "end": "..."}, "cycles": 28,
     "kinds": {"direction": {
         "ts": ["...", ...],
         "model": [0.001, ...],                                   # the champion each cycle chose
         "baselines": {"last_move": [0.0, ...], "majority": [-0.01, ...]},
         "policies": {"freeze_first": [0.0, ...], "newest": [0.002, ...]},
         "final": {"skill": 0.004, "interval": [-0.002, 0.010]}}}}
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import numpy as np

from app.services.replay.workspace import replays_dir


def _iso(ms: float | int | None) -> str | None:
    return None if ms is None else datetime.fromtimestamp(int(ms) / 1000, tz=UTC).isoformat()


def _shape(replay_id: str, report: dict[str, Any], status: str, created: float) -> dict[str, Any]:
    spec = report.get("spec") or {}
    kinds: dict[str, Any] = {}
    for kind, curves in (report.get("curves") or {}).items():
        served = curves.get("served") or {}
        ts = served.get("ts_ms") or []
        if not ts:
            continue
        policies = {}
        for policy in ("freeze_first", "newest"):
            curve = curves.get(policy) or {}
            if curve.get("ts_ms"):
                policies[policy] = [round(float(v), 6) for v in np.interp(ts, curve["ts_ms"], curve["skill"])]
        final = (report.get("kinds") or {}).get(kind, {}).get("policies", {}).get("served") or {}
        baseline = str(final.get("baseline") or "strongest baseline")
        kinds[kind] = {
            "ts": [_iso(t) for t in ts],
            "model": [round(float(v), 6) for v in served["skill"]],
            "baselines": {baseline: [0.0] * len(ts)},
            "policies": policies,
            "final": {"skill": final.get("skill"), "interval": final.get("interval")},
        }
    return {
        "id": replay_id, "status": status, "created_ts": _iso(created * 1000),
        "finished_ts": _iso(created * 1000) if status == "finished" else None,
        "window": {"start": _iso(spec.get("from_ms")), "end": _iso(spec.get("to_ms"))},
        "cycles": len(report.get("steps") or []), "kinds": kinds,
    }


def list_replays(limit: int = 10) -> list[dict[str, Any]]:
    """Replay reports, newest first, in the shape above (a replay still running has no curves yet)."""
    root = replays_dir()
    if not root.is_dir():
        return []
    found = []
    for directory in root.iterdir():
        report, state = directory / "report.json", directory / "state.json"
        if report.is_file():
            found.append((report.stat().st_mtime, directory.name, report, "finished"))
        elif state.is_file():
            found.append((state.stat().st_mtime, directory.name, state, "running"))
    out = []
    for mtime, replay_id, path, status in sorted(found, reverse=True)[:limit]:
        try:
            out.append(_shape(replay_id, json.loads(path.read_text()), status, mtime))
        except (OSError, ValueError):
            continue  # a report being rewritten: the next load shows it
    return out


def replays_page() -> dict[str, Any]:
    return {"replays": list_replays()}
