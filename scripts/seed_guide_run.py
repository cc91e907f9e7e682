"""Run every code block of the seed guide (docs/seed-guide.md) as a new user would, and report each one.

Usage: .venv/bin/python scripts/seed_guide_run.py [--csv FOLDER] [--days 7] [--code DIR] [--json OUT]

The guide's blocks run in order with only their imports mapped (DESIGN 9), after the snippets the guide
page documents for the names it leaves undefined; those snippets run statement by statement, and a
failing block does not stop the run, so a tree where some are missing still gets a verdict per block.
Everything happens in a throw-away store (SQLite, embedded Redis, a temp model store).

- candles: `--csv FOLDER` stores real `<BASE>-<QUOTE>_1m.csv` candles (the newest `--days`, the last 26 h
  held back until the drift check, as the 1-minute ingest would add them); without it, 3 days simulated.
- `--code DIR` imports `app` from another tree (e.g. `git archive main | tar -x -C DIR`) to measure the
  guide against it ("before"); the guide and this runner always come from this checkout.

Not read by tests. Prints one line per block (ok, or the error) and what the blocks printed.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import importlib.util
import io
import json
import os
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SYMBOLS = ["BTC-USDT", "ETH-USDT", "XRP-USDT"]
HOUR_MS = 3_600_000
SIM_NOW = 1_764_547_200_000
FLOW_A = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 14]
FLOW_B = [12, 13]


def _guide() -> Any:
    spec = importlib.util.spec_from_file_location("seed_guide_parser", ROOT / "tests" / "seed" / "guide.py")
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def _fresh_stack(base: Path) -> None:
    """A new store, SQLite database and embedded Redis for one flow (settings and caches reset)."""
    base.mkdir(parents=True)
    os.environ.update(MODEL_STORE_DIR=str(base / "store"), DATABASE_URL=f"sqlite:///{base / 'mlpipe.db'}",
                      SYMBOLS=",".join(SYMBOLS))
    os.environ.pop("REDIS_URL", None)
    from app.core.config import reset_settings
    from app.core.db import dispose_engines

    dispose_engines()
    reset_settings()
    with contextlib.suppress(ImportError):
        from app.store.cache import reset_cache

        reset_cache()
    from app.services.bootstrap import migrate

    migrate()


def _store_csv(folder: Path, days: float, first: bool) -> None:
    """First the newest `days` of each symbol's 1m candles but the last 26 h; then those 26 h."""
    from app.data.candles import store_candles
    from app.data.sources.csv_source import read_candles_csv

    for symbol in SYMBOLS:
        raw = read_candles_csv(folder / f"{symbol}_1m.csv").dropna()
        raw = raw[raw["ts"] % 60_000 == 0].drop_duplicates("ts").sort_values("ts")
        end = int(raw["ts"].iloc[-1])
        held_back = end - 26 * HOUR_MS
        if first:
            keep = raw[(raw["ts"] > end - days * 24 * HOUR_MS) & (raw["ts"] <= held_back)]
        else:
            keep = raw[raw["ts"] > held_back]
        store_candles(symbol, keep.reset_index(drop=True), "csv")


def _candles(args: argparse.Namespace, first: bool) -> None:
    if args.csv:
        _store_csv(Path(args.csv), args.days, first)
        return
    from app.services.ingest import ingest

    ingest("simulated", SYMBOLS, days=3.0, now_ms=SIM_NOW + (0 if first else 26 * HOUR_MS))


def _statements(code: str) -> list[str]:
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return [code]
    return [ast.get_source_segment(code, node) or "" for node in tree.body]


def _run(code: str, ns: dict[str, Any], label: str, parser: Any, one_by_one: bool) -> str | None:
    """None when it ran, else the error's last line (snippets: the first failing statement's)."""
    pieces = _statements(code) if one_by_one else [code]
    error = None
    for piece in pieces:
        try:
            parser.run(piece, ns, label)
        except Exception as exc:  # noqa: BLE001 - the report says what failed and goes on
            error = error or f"{type(exc).__name__}: {str(exc).splitlines()[0][:300] if str(exc) else ''}"
            if not one_by_one:
                ns["__traceback__"] = traceback.format_exc(limit=-3)
    return error


def _metrics(results: dict) -> dict:
    keys = ("accuracy", "f1", "rmse", "skill", "skill_interval", "beats_baseline", "baseline", "n",
            "n_effective")
    return {k: results.get(k) for k in keys if k in results}


def _figures(number: int, ns: dict[str, Any]) -> dict:
    """The numbers a block leaves behind, for the closing note."""
    if number in (1, 3) and "results" in ns:
        return {"backtest": _metrics(ns["results"])}
    if number == 8:
        return {name: _metrics(r) for name, r in ns.get("validation_results", {}).items()}
    if number == 9:
        return {"top_models": ns.get("top_models")}
    if number == 10 and ns.get("active_models"):
        from app import db

        out = {}
        for name in ns["active_models"]:
            model = ns["load_model"](name)
            live = ns["validator"].validate_on_live_data(model, symbol="BTC-USDT", hours_back=24)
            last = db.get_last_backtest(name)
            out[name] = {"live": _metrics(live), "last_backtest_accuracy": last.get("accuracy"),
                         "drift": last["accuracy"] - live["accuracy"]}
        return out
    if number == 11:
        from app.services.models import list_models

        return {"models": {r.name: r.status for r in list_models()}}
    if number == 13 and "results" in ns:
        r = ns["results"]
        return {"ensemble": {k: r.get(k) for k in ("accuracy", "f1", "eval_rows")},
                "members": r.get("members"), "baseline": r.get("baseline"), "status": r.get("status")}
    if number == 14:
        return {k: ns.get(k) for k in ("direction_pred", "risk")}
    return {}


def run_flow(numbers: list[int], args: argparse.Namespace, parser: Any, base: Path) -> list[dict]:
    _fresh_stack(base)
    _candles(args, first=True)
    blocks, snippets = parser.python_blocks(), parser.snippets()
    ns: dict[str, Any] = {"__name__": "seed_guide"}
    if numbers[0] != 1:
        _run(snippets["setup", 1], ns, "setup 1", parser, True)
    report = []
    for number in numbers:
        out = io.StringIO()
        start = time.perf_counter()
        with contextlib.redirect_stdout(out):
            setup = _run(snippets["setup", number], ns, f"setup {number}", parser, True) \
                if ("setup", number) in snippets else None
            error = _run(blocks[number].mapped, ns, f"seed block {number}", parser, False)
            if number == 10:
                _candles(args, first=False)
            then = _run(snippets["then", number], ns, f"then {number}", parser, True) \
                if ("then", number) in snippets else None
        ok = error is None and then is None
        try:
            figures = _figures(number, ns) if ok else {}
        except Exception as exc:  # noqa: BLE001
            figures = {"error": f"{type(exc).__name__}: {exc}"}
        report.append({"block": number, "heading": blocks[number].heading, "ok": ok, "error": error,
                       "setup_error": setup, "then_error": then, "figures": figures,
                       "seconds": round(time.perf_counter() - start, 1), "printed": out.getvalue()})
        line = "ok" if report[-1]["ok"] else f"FAILS {error or then}"
        print(f"block {number:2d} {blocks[number].heading[:40]:40s} {report[-1]['seconds']:6.1f}s  {line}")
        if setup:
            print(f"           (setup: {setup})")
    return report


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--csv", help="folder of <BASE>-<QUOTE>_1m.csv files (default: simulated candles)")
    ap.add_argument("--days", type=float, default=7.0, help="days of real candles to store")
    ap.add_argument("--code", help="import app from this tree instead of this checkout")
    ap.add_argument("--json", help="write the report here")
    args = ap.parse_args()
    sys.path.insert(0, str(Path(args.code).resolve() if args.code else ROOT))
    import app

    print(f"app from {Path(app.__file__).parent}; candles: {args.csv or 'simulated'}")
    parser = _guide()
    with tempfile.TemporaryDirectory(prefix="seed-guide-") as tmp:
        report = run_flow(FLOW_A, args, parser, Path(tmp) / "a")
        report += run_flow(FLOW_B, args, parser, Path(tmp) / "b")
    report.sort(key=lambda r: r["block"])
    print(f"\n{sum(r['ok'] for r in report)} of {len(report)} blocks run")
    for r in report:
        if r["printed"].strip():
            print(f"\n--- block {r['block']} printed:\n{r['printed'].rstrip()}")
        if r.get("figures"):
            print(f"--- block {r['block']} figures: {json.dumps(r['figures'], default=str)}")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
