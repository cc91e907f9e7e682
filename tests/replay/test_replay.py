"""`mlpipe replay` end to end: real cycles on real RQ worker processes in the replay's own world, step by
step on the candles known then; the champions served on the next period and scored; the report as JSON,
a table and PNG plots; a poisoned future changes no decision; a second run of the same id resumes."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml
from sqlalchemy import update
from typer.testing import CliRunner

from app.cli import app as cli
from app.core.db import get_engine
from app.data.simulator import SimulatorParams
from app.services.dashboard.replays import list_replays
from app.services.models import list_models
from app.services.replay import load_report, run_replay
from app.store.reports import get_report
from app.tables.candles import Candle
from tests.cycle.helpers import DAY_BARS, START_MS, definition, seed_candles

SYMBOLS = ["BTC-USDT", "ETH-USDT"]
HOUR_MS = 3_600_000
DIRECTION = {**definition("xgboost", "dir_ret"), "features": ["returns", "returns_5"]}
VOLATILITY = definition("gradient_boosting", "vol_gb")
RISK = definition("random_forest", "risk_rf")
FIRST_STEP = START_MS + 30 * HOUR_MS


def _spec(replay_id: str) -> dict:
    return {"replay_id": replay_id, "symbols": SYMBOLS, "from_ms": FIRST_STEP,
            "to_ms": FIRST_STEP + 12 * HOUR_MS, "every_hours": 12,
            "definitions": [DIRECTION, VOLATILITY, RISK], "window_days": 1, "workers": 2}


@pytest.fixture
def history(store_dir: Path) -> int:
    seed_candles(days=2.5, symbols=SYMBOLS, params=SimulatorParams(ar1=0.5))
    return START_MS + int(2.5 * DAY_BARS) * 60_000


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat()


def test_the_command_line_says_what_to_fix(store_dir: Path) -> None:
    for args, says in ((["--from", "someday", "--to", "2021-04-06"], "date"),
                       (["--from", "2021-04-05", "--to", "2021-04-06", "--every", "soon"], "12h")):
        typed = CliRunner().invoke(cli, ["replay", "--symbols", "BTC-USDT", *args])
        assert typed.exit_code == 2 and says in typed.output, typed.output


def _decisions(report: dict) -> list[dict]:
    return [{k: s[k] for k in ("as_of_ms", "window", "champions", "switched", "drift_flagged", "validation")}
            for s in report["steps"]]


@pytest.mark.slow
def test_a_replay_runs_the_real_cycle_per_step_serves_and_scores_and_a_poisoned_future_changes_nothing(
    history: int, store_dir: Path
) -> None:
    events: list[dict] = []
    report = run_replay(_spec("clean"), events.append)

    steps = report["steps"]
    assert [s["status"] for s in steps] == ["succeeded", "succeeded"], [s["errors"] for s in steps]
    for step in steps:  # each cycle's window ends on the newest candle closed at its step, never later
        assert step["window"]["end_ms"] == step["step_ms"] - 60_000
    assert any(e.get("event") == "step" for e in events) and any("models" in e for e in events)
    assert list_models() == [], "the replay wrote models into the service's own database"

    direction = report["kinds"]["direction"]["policies"]
    assert set(direction) == {"served", "freeze_first", "newest"}
    served = direction["served"]
    assert served["n"] > 0 and served["interval"] is not None and served["interval"][0] <= served["skill"]
    assert "buy_and_hold" in served["trading"]
    # beside each baseline; the headline is the one strongest over the whole replay: the lowest skill
    against = served["against"]
    assert "base_rate" in against and all(r["n"] == served["n"] for r in against.values())
    lowest = min(r["skill"] for r in against.values())
    assert served["skill"] == lowest == against[served["baseline"]]["skill"]
    assert set(served["by_symbol"]) == set(SYMBOLS)
    volatility = report["kinds"]["volatility"]["policies"]["served"]
    assert set(volatility["qlike"]) == {"model", *volatility["against"]}
    assert all(v > 0 for v in volatility["qlike"].values())
    assert set(report["kinds"]) == {"direction", "volatility", "risk"}
    assert set(report["decisions"]) == {"direction", "volatility", "risk"}
    assert -1 <= report["kinds"]["risk"]["policies"]["served"]["spearman"] <= 1

    directory = Path(report["directory"])
    assert json.loads((directory / "report.json").read_text())["replay_id"] == "clean"
    for plot in report["plots"]:
        assert (directory / plot).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "cumulative_skill.png" in report["plots"]
    assert load_report("clean")["state"] == "finished"
    published = json.loads(get_report("replays", "clean.json"))  # in the artifact store too (S3 or local)
    assert published["kinds"] == json.loads(json.dumps(report["kinds"], default=str))
    assert get_report("replays", "clean-cumulative_skill.png")[:4] == b"\x89PNG"
    shown = {r["id"]: r for r in list_replays()}["clean"]  # what the dashboard's Replays page draws
    assert shown["status"] == "finished" and shown["cycles"] == 2
    curve = shown["kinds"]["direction"]
    assert len(curve["ts"]) == len(curve["model"]) == len(curve["policies"]["freeze_first"]) > 10
    assert curve["final"]["skill"] == served["skill"]

    # the same future, poisoned after the last step's "now": every decision stays as it was
    last_as_of = steps[-1]["as_of_ms"]
    with get_engine().begin() as conn:
        conn.execute(update(Candle).where(Candle.ts > last_as_of).values(
            close=Candle.close * 3, high=Candle.high * 3, low=Candle.low * 3, open=Candle.open * 3))
    # (the poisoned run goes through the command line, as a user would type it)
    models = store_dir / "models.yaml"
    models.write_text(yaml.safe_dump({"defaults": {"window_days": 1},
                                      "models_to_train": [DIRECTION, VOLATILITY, RISK]}))
    typed = CliRunner().invoke(cli, [
        "replay", "--symbols", ",".join(SYMBOLS), "--from", _iso(FIRST_STEP),
        "--to", _iso(FIRST_STEP + 12 * HOUR_MS), "--every", "12h", "--models", str(models),
        "--id", "poisoned", "--json"])
    assert typed.exit_code == 0, typed.output
    poisoned = json.loads(typed.output.strip().splitlines()[-1])
    assert _decisions(poisoned) == _decisions(report)
    # ... while what was served after the last step is scored on the poisoned candles (the test can fail)
    assert poisoned["kinds"]["direction"]["policies"]["served"] != served

    # a second run of the same id starts no cycle: it resumes from the recorded steps
    again = run_replay(_spec("clean"))
    assert [s["cycle_id"] for s in again["steps"]] == [s["cycle_id"] for s in steps]
