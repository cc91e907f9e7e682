"""The fault, load and abuse figures of tests/faults/test_api_under_faults.py, on this machine.

    .venv/bin/python bench/faults.py            # about a minute; needs Postgres and Redis as the tests do

Runs that module (a real `mlpipe api` process behind freezable proxies, real worker processes), collects
the figures it prints, shows them as tables and writes them with the machine's load to
`bench/results/faults-<time>.json`. Ratios (legitimate p99 under abuse / quiet p99, measured just before
each flood) are the figures to compare across machines; absolute latencies depend on the machine's load.
"""

from __future__ import annotations

import json
import os
import platform
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    started = time.strftime("%Y%m%d-%H%M%S")
    load_before = os.getloadavg()
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-s", "-p", "no:cacheprovider",
         "tests/faults/test_api_under_faults.py"],
        cwd=ROOT, capture_output=True, text=True,
    )
    match = re.search(r"^FIGURES (\{.*?^\})", run.stdout, re.S | re.M)
    if match is None:
        print(run.stdout[-4000:], run.stderr[-2000:], sep="\n")
        return 1
    figures = json.loads(match.group(1))
    figures["machine"] = {"cpus": os.cpu_count(), "load_before": load_before, "load_after": os.getloadavg(),
                          "python": platform.python_version(), "tests_passed": run.returncode == 0}
    out = ROOT / "bench" / "results" / f"faults-{started}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(figures, indent=2))
    abuse = figures.get("abuse", {})
    print("abuse (4 abusive connections, a niced process of their own; 400 legitimate requests each)")
    print(f"{'flood':<22}{'abuse req/s':>12}{'quiet p99 ms':>14}{'legit p99 ms':>14}{'ratio':>8}")
    for name, row in abuse.items():
        if isinstance(row, dict):
            print(f"{name:<22}{row['abuse_requests_per_s']:>12}{row['quiet_p99_ms']:>14}"
                  f"{row['legit_p99_ms']:>14}{row['p99_ratio']:>8}")
    print(f"API memory growth under abuse: {abuse.get('rss_growth_mb')} MB")
    print("rank under load:", figures.get("rank_under_load"))
    for fault in ("hung_redis", "hung_postgres"):
        print(fault, json.dumps(figures.get(fault), indent=None))
    print(f"written to {out.relative_to(ROOT)}")
    return 0 if run.returncode == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
