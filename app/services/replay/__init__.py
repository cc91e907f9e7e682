"""Replaying the pipeline over history (`mlpipe replay`): the real cycle every `every` hours on what was
known then, its champions served on the following period and scored once their horizons passed.

    run_replay(spec, progress=None) -> report      spec: symbols, from_ms, to_ms, every_hours,
                                                    definitions, window_days, workers, replay_id
    load_report(replay_id) -> report               what GET /replays/{id} and --show read

The replay's world (database, store, queues) is its own (`workspace.py`); steps (`steps.py`) are
recorded as they end, so running the same replay id again resumes it; scoring (`score.py`) and the
report (`report.py`) follow the last step.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable
from typing import Any

from app.core.errors import BadInput, NotFound
from app.core.logging import get_logger
from app.services.bootstrap import migrate
from app.services.replay.ahead import Periods, core_idle
from app.services.replay.report import TABLE_COLUMNS, table_rows, write_plots
from app.services.replay.score import decision_counts, score_replay
from app.services.replay.steps import replay_workers, run_step
from app.services.replay.workspace import Workspace, copy_candles

log = get_logger(__name__)

HOUR_MS = 3_600_000
DAY_MS = 86_400_000
MAX_STEPS = 400
REPLAY_JOB_TIMEOUT = 48 * 3600
_EVERY = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([mhd])\s*$")

__all__ = ["TABLE_COLUMNS", "load_report", "new_replay_id", "parse_every", "parse_when", "plan_steps",
           "run_replay", "submit_replay", "table_rows"]


def new_replay_id() -> str:
    return uuid.uuid4().hex[:12]


def parse_when(text: str) -> int:
    """A date (midnight UTC) or an ISO-8601 time (UTC when no offset is given), in ms."""
    import pandas as pd

    try:
        stamp = pd.Timestamp(str(text))
    except (ValueError, TypeError, OverflowError) as exc:
        raise BadInput(f"{text!r}: give a date (2021-04-05) or an ISO-8601 UTC time") from exc
    if pd.isna(stamp):
        raise BadInput(f"{text!r}: give a date (2021-04-05) or an ISO-8601 UTC time")
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    return int(stamp.value // 1_000_000)


def parse_every(text: str) -> float:
    """'12h', '90m' or '1d' -> hours."""
    found = _EVERY.match(str(text))
    if not found:
        raise BadInput(f"{text!r}: a number and a unit, e.g. 12h, 90m, 1d")
    return float(found.group(1)) * {"m": 1 / 60, "h": 1.0, "d": 24.0}[found.group(2)]


def submit_replay(spec: dict[str, Any]) -> str:
    """Check a replay's spec and queue it as one RQ job (POST /replays); its id."""
    from app.core.queues import get_queue
    from app.services.cycle.definitions import check_buildable, load_definitions

    spec = {**spec, "replay_id": spec.get("replay_id") or new_replay_id()}
    plan_steps(spec["from_ms"], spec["to_ms"], spec["every_hours"])
    check_buildable(load_definitions({k: spec[k] for k in ("definitions", "models_file") if spec.get(k)}))
    workspace = Workspace.of(spec["replay_id"])
    workspace.root.mkdir(parents=True, exist_ok=True)
    workspace.write_json("queued.json", {"spec": spec, "queued_at": time.time()})
    get_queue("default").enqueue("workers.jobs.replay_job", spec, job_id=f"replay-{spec['replay_id']}",
                                 job_timeout=REPLAY_JOB_TIMEOUT, result_ttl=86_400, failure_ttl=7 * 86_400)
    return spec["replay_id"]


def plan_steps(from_ms: int, to_ms: int, every_hours: float) -> list[int]:
    """Step times from `from_ms` to `to_ms` (both included when on the grid), `every_hours` apart."""
    if every_hours <= 0:
        raise BadInput("--every must be positive (e.g. 12h)")
    if to_ms < from_ms:
        raise BadInput("--to must not be before --from")
    every = int(every_hours * HOUR_MS)
    steps = list(range(int(from_ms), int(to_ms) + 1, every))
    if len(steps) > MAX_STEPS:
        raise BadInput(f"{len(steps)} steps: at most {MAX_STEPS}; take a longer --every or a shorter range")
    return steps


def run_replay(
    spec: dict[str, Any], progress: Callable[[dict[str, Any]], None] | None = None
) -> dict[str, Any]:
    """Run (or resume) the replay `spec["replay_id"]`; return its report (also written to report.json)."""
    from app.services.cycle.definitions import load_definitions, window_days

    replay_id = spec.get("replay_id") or new_replay_id()
    workspace = Workspace.of(replay_id)
    state = workspace.read_state()
    if state:  # a resume: the spec it started with stands
        spec = state["spec"]
    else:
        chosen = {k: spec[k] for k in ("definitions", "models_file", "window_days")
                  if spec.get(k) is not None}
        definitions = load_definitions(chosen)
        spec = {**spec, "replay_id": replay_id, "definitions": definitions,
                "window_days": window_days(chosen)}
    steps = plan_steps(spec["from_ms"], spec["to_ms"], spec["every_hours"])
    every_ms = int(spec["every_hours"] * HOUR_MS)
    workspace.root.mkdir(parents=True, exist_ok=True)
    if not state:
        from app.services.cycle.training import history_days

        longest = max([float(spec["window_days"])] + [float(d.get("window_days") or 0)
                                                      for d in spec["definitions"]])
        history = max([0.0] + [history_days(d) for d in spec["definitions"]])  # a time-of-day profile's
        start = steps[0] - int((longest + history + 1) * DAY_MS)  # windows, history, a day of warm-up
        end = steps[-1] + every_ms + DAY_MS  # the last period and its labels
        migrate(workspace.database_url)
        copied = copy_candles(workspace, spec["symbols"], start, end)
        state = {"spec": spec, "steps": [], "copied": copied, "created_at": time.time()}
        workspace.write_json("state.json", state)
    done = {s["step_ms"]: s for s in state["steps"]}
    with workspace.active(), Periods(every_ms, spec["symbols"]) as periods:
        todo = [s for s in steps if s not in done]
        if todo:
            count = int(spec.get("workers") or 2)

            def watch(event: dict[str, Any]) -> None:
                if core_idle(event, count):
                    periods.release()
                if progress is not None:
                    progress(event)

            with replay_workers(workspace, count) as workers:
                for step_ms in todo:
                    if progress is not None:
                        progress({"event": "step", "step_ms": step_ms, "index": steps.index(step_ms),
                                  "steps": len(steps)})
                    decided = run_step(step_ms, spec, workers, watch)
                    state["steps"] = sorted([*state["steps"], decided], key=lambda s: s["step_ms"])
                    workspace.write_json("state.json", state)
                    log.info("replay step done", replay_id=replay_id, step_ms=step_ms,
                             status=decided["status"])
                    # this step's served periods are scored while the next step's cycle runs (ahead.py)
                    periods.ahead([s for s in state["steps"] if s["step_ms"] <= step_ms])
        periods.drain()
        ordered = sorted(state["steps"], key=lambda s: s["step_ms"])
        if progress is not None:
            progress({"event": "scoring", "steps": len(ordered)})
        kinds = score_replay(ordered, every_ms, spec["symbols"], periods)
    report = {
        "replay_id": replay_id,
        "spec": {k: v for k, v in spec.items() if k != "definitions"},
        "definitions": [d["name"] for d in spec["definitions"]],
        "steps": ordered,
        "kinds": {k: {"policies": v["policies"]} for k, v in kinds.items()},
        "curves": {k: v["curves"] for k, v in kinds.items()},
        "decisions": decision_counts(ordered),
        "directory": str(workspace.root),
    }
    report["plots"] = write_plots(workspace.root, kinds)
    workspace.write_json("report.json", report)
    _publish(workspace, report)
    return report


def _publish(workspace: Workspace, report: dict[str, Any]) -> None:
    """The report and plots also go to the artifact store (`reports/replays/`; S3 with MODEL_STORE_URL), so
    an API process on another host answers GET /replays/{id} from there."""
    import json

    from app.store.reports import put_report

    replay_id = workspace.replay_id
    put_report("replays", f"{replay_id}.json", json.dumps(report, default=str).encode())
    for plot in report["plots"]:
        put_report("replays", f"{replay_id}-{plot}", (workspace.root / plot).read_bytes())


def load_report(replay_id: str) -> dict[str, Any]:
    """The finished report, or the state of one still running (steps done so far)."""
    import json

    from app.store.reports import get_report

    workspace = Workspace.of(replay_id)
    path = workspace.root / "report.json"
    if path.is_file():
        return {"state": "finished", **json.loads(path.read_text())}
    published = get_report("replays", f"{replay_id}.json")  # finished on another host
    if published is not None:
        return {"state": "finished", **json.loads(published)}
    state = workspace.read_state()
    if not state:
        queued = workspace.root / "queued.json"
        if not queued.is_file():
            raise NotFound(f"no replay {replay_id!r}; POST /replays (or `mlpipe replay`) starts one")
        spec = json.loads(queued.read_text())["spec"]
        return {"state": _job_state(replay_id), "replay_id": replay_id, "steps": [],
                "spec": {k: v for k, v in spec.items() if k != "definitions"}}
    return {"state": _job_state(replay_id, "running"), "replay_id": replay_id,
            "steps": state.get("steps", []),
            "spec": {k: v for k, v in state.get("spec", {}).items() if k != "definitions"}}




def _job_state(replay_id: str, default: str = "queued") -> str:
    """`failed` when its RQ job failed (the reason is in the worker's log and the job), else `default`."""
    from rq.exceptions import NoSuchJobError
    from rq.job import Job

    from app.core.redis import rq_connection

    try:
        job = Job.fetch(f"replay-{replay_id}", connection=rq_connection())
    except NoSuchJobError:
        return default
    return "failed" if job.is_failed else default
