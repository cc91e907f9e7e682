"""Each definition of a finished replay scored as if it alone had been served (not part of the tests).

    MODEL_STORE_DIR=/tmp/store .venv/bin/python scripts/replay_definitions.py real [--kind direction]

A replay's report scores what the cycle served (its champions) beside two policies; a definition that
never won a champion decision is invisible there. This scores, for every definition of the kind, its own
fresh fit of each step on the period after that step, exactly as the report scores a policy
(`app.services.replay.score`: rows from the newest candle known at the step, labels from later bars,
rows the model trained on left out), pooled over the steps and symbols, with the block-bootstrap interval
over the model's strongest baseline; and per symbol.
"""

from __future__ import annotations

import argparse
import json

import numpy as np


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("replay_id")
    parser.add_argument("--kind", default="direction")
    args = parser.parse_args()

    from app.ml.evaluation import skill_estimate
    from app.ml.served import pool
    from app.services.models import load_model
    from app.services.replay.score import _period_rows
    from app.services.replay.workspace import Workspace

    workspace = Workspace.of(args.replay_id, must_exist=True)
    state = workspace.read_state()
    steps, spec = state["steps"], state["spec"]
    every_ms = int(spec["every_hours"] * 3_600_000)
    out = {}
    with workspace.active():
        families: dict[str, list[tuple[dict, str]]] = {}
        for step in steps:
            for name in step["fits"].get(args.kind) or []:
                families.setdefault(name.rsplit("_", 1)[0], []).append((step, name))
        for family, fits in sorted(families.items()):
            parts = []
            for step, name in fits:
                found = _period_rows(load_model(name), name, int(step["as_of_ms"]), every_ms, spec["symbols"])
                if found is not None:
                    parts.append(found[0])
            rows = pool(f"{args.kind}:{family}", parts)
            if rows is None:
                continue
            entry = {"all": skill_estimate(rows).as_dict()}
            for symbol in spec["symbols"]:
                mine = rows.subset(rows.symbol == symbol)
                if len(mine):
                    entry[symbol] = skill_estimate(mine).as_dict()
            out[family] = entry
            pooled = entry["all"]
            low, high = pooled.get("interval") or (np.nan, np.nan)
            print(f"{family:28s} skill {pooled['skill']:+.4f} [{low:+.4f}, {high:+.4f}] n={pooled.get('n')} "
                  + " ".join(f"{s} {entry[s]['skill']:+.4f}" for s in spec["symbols"] if s in entry))
    (workspace.root / f"definitions_{args.kind}.json").write_text(json.dumps(out, indent=1, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
