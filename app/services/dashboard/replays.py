"""The Replays page: cumulative out-of-sample skill per kind, against the naive baselines and the two
policies, over a replayed stretch of history.

The replay service (`POST/GET /replays`) is being built beside this page, so the page reads the small
shape below, and `list_replays` has no source yet: the page says "no replays yet". The integrator points
`list_replays` at the replay service; nothing else needs to change.

A replay report (timestamps ISO-8601 UTC; every series has one value per replayed cycle, aligned on `ts`;
skill is against the strongest naive baseline, so that baseline's own line is 0):

    {"id": "rp_0003", "status": "running" | "finished" | "failed",
     "created_ts": "...", "finished_ts": "..." | null,
     "window": {"start": "...", "end": "..."}, "cycles": 28,
     "kinds": {"direction": {
         "ts": ["...", ...],
         "model": [0.001, ...],                                   # the champion each cycle chose
         "baselines": {"last_move": [0.0, ...], "majority": [-0.01, ...]},
         "policies": {"keep_incumbent": [0.0, ...], "switch_on_test": [0.002, ...]},
         "final": {"skill": 0.004, "interval": [-0.002, 0.010]}}}}
"""

from __future__ import annotations

from typing import Any


def list_replays(limit: int = 10) -> list[dict[str, Any]]:
    """Replay reports, newest first, in the shape above. No replay service is installed yet: none."""
    return []


def replays_page() -> dict[str, Any]:
    return {"replays": list_replays()}
