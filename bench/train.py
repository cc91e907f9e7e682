"""Training benchmark: the whole pipeline against the bare estimator fit, per model kind.

For each of the five kinds, on simulated 1m candles (default 3 symbols x 7 days):
  pipeline  `TrainingPipeline().train_model(...)`: features, targets, split with embargo, fit,
            calibration, holdout validation (baselines, reliability, trading backtest)
  bare fit  the kind's inner estimator fit (`_fit_estimator`) alone, from a fresh default model, on the
            very matrices the pipeline fits on, timed at the point where the pipeline fits (inside a
            separate, untimed pipeline run) so both see the same process state. (Timed after a pipeline
            had returned, OpenMP fits measured 5-20x slower on a loaded 2-core machine; see README.)
and the ratio pipeline / bare fit, the pipeline's stages, and its peak memory: RSS above the level before
the first call in a fresh process (sampled every 5 ms; native allocations of xgboost/torch included) and
the tracemalloc peak of that run (Python and numpy allocations). Each kind runs in its own process.

    .venv/bin/python bench/train.py [--kinds direction,risk] [--days 7] [--symbols 3] [--repeat 1]

Prints a table and writes JSON to bench/results/ (git-ignored).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import sys
import threading
import time
import tracemalloc
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

KINDS = ("direction", "risk", "price", "momentum", "volatility")
SYMBOLS = ("BTC-USDT", "ETH-USDT", "XRP-USDT", "SOL-USDT", "ADA-USDT")
START_TS = 1_767_225_600_000  # 2026-01-01 UTC
TARGET_RATIO = 1.20


class PeakRSS:
    """Highest resident set size seen while the block runs, above the level when it started."""

    def __init__(self, interval_s: float = 0.005) -> None:
        import psutil

        self._process = psutil.Process()
        self._interval = interval_s
        self._stop = threading.Event()
        self.start_rss = self.peak_rss = 0

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak_rss = max(self.peak_rss, self._process.memory_info().rss)
            self._stop.wait(self._interval)

    def __enter__(self) -> PeakRSS:
        self.start_rss = self.peak_rss = self._process.memory_info().rss
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak_rss = max(self.peak_rss, self._process.memory_info().rss)

    @property
    def delta_mb(self) -> float:
        return (self.peak_rss - self.start_rss) / 2**20


def simulated_candles(n_symbols: int, days: float, seed: int, kind: str) -> dict[str, Any]:
    """`days` of 1m candles per symbol, plus the warm-up bars the kind's features need (as `train` loads)."""
    from app.data.frames import candles_frame
    from app.data.simulator import MarketSimulator
    from app.features import required_warmup
    from app.ml.training import model_from_definition

    probe = model_from_definition({"kind": kind})
    bars = int(days * 1440) + required_warmup(probe.features, "1m")
    raw = MarketSimulator(seed).generate(list(SYMBOLS[:n_symbols]), START_TS, bars)
    return {symbol: candles_frame(frame) for symbol, frame in raw.items()}


class Stages:
    """Wall time per pipeline stage, by wrapping the functions the template calls (cheap wrappers)."""

    def __init__(self, capture: bool = False, bare_kind: str | None = None) -> None:
        self.seconds: dict[str, float] = {}
        self.capture = capture
        self.bare_kind = bare_kind
        self.bare_s: float | None = None
        self.captured: tuple[Any, Any] | None = None

    def timed(self, name: str, func: Any, capture: bool = False) -> Any:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if capture and self.bare_kind:  # the bare fit, at the very point the pipeline fits
                self.bare_s = bare_fit(self.bare_kind, args[1], args[2], fit=func)
            start = time.perf_counter()
            try:
                return func(*args, **kwargs)
            finally:
                self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - start
                if capture and self.capture:  # args: (model, X, y)
                    self.captured = (args[1].copy(), args[2].copy())

        return wrapper


def run_pipeline(kind: str, candles: dict[str, Any], stages: Stages) -> float:
    """One timed `train_model`, with each stage's time recorded in `stages`."""
    import app.ml.dataset as dataset_module
    import app.ml.validation as validation_module
    from app.ml.registry import model_class_for
    from app.ml.training import TrainingPipeline

    cls = model_class_for(kind)
    originals = {
        "build_dataset": dataset_module.build_dataset,
        "evaluate_dataset": validation_module.evaluate_dataset,
        "_fit_estimator": cls._fit_estimator,
        "_calibrate": cls._calibrate,
    }
    dataset_module.build_dataset = stages.timed("dataset", originals["build_dataset"])
    validation_module.evaluate_dataset = stages.timed("validate", originals["evaluate_dataset"])
    cls._fit_estimator = stages.timed("fit", originals["_fit_estimator"], capture=True)
    cls._calibrate = stages.timed("calibrate_fit", originals["_calibrate"])
    try:
        start = time.perf_counter()
        TrainingPipeline().train_model({"kind": kind, "data_source": "simulated"}, candles)
        return time.perf_counter() - start
    finally:
        dataset_module.build_dataset = originals["build_dataset"]
        validation_module.evaluate_dataset = originals["evaluate_dataset"]
        cls._fit_estimator = originals["_fit_estimator"]
        cls._calibrate = originals["_calibrate"]


def bare_fit(kind: str, X: Any, y: Any, fit: Any = None) -> float:
    """The inner estimator's fit alone (`fit`: the unwrapped `_fit_estimator`), from a fresh default model."""
    from app.ml.training import model_from_definition

    model = model_from_definition({"kind": kind})
    model.feature_names_ = list(model.features)
    fit = fit or type(model)._fit_estimator
    start = time.perf_counter()
    fit(model, X, y)
    return time.perf_counter() - start


def bench_kind(kind: str, n_symbols: int, days: float, repeat: int, seed: int) -> dict[str, Any]:
    """Runs in a fresh process: warm-up (captures the fit matrices), then `repeat` timed rounds."""
    candles = simulated_candles(n_symbols, days, seed, kind)
    warm = Stages(capture=True)
    tracemalloc.start()
    with PeakRSS() as first:  # the first run in a fresh process: the memory the pipeline really adds
        run_pipeline(kind, candles, warm)  # also warms imports, thread pools; captures the fit matrices
    traced_peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    assert warm.captured is not None
    X, y = warm.captured
    rounds = []
    for _ in range(repeat):
        probe = Stages(bare_kind=kind)
        run_pipeline(kind, candles, probe)  # untimed; its fit hook times a fresh bare fit first
        assert probe.bare_s is not None
        fit_s = probe.bare_s
        stages = Stages()
        with PeakRSS() as memory:
            pipeline_s = run_pipeline(kind, candles, stages)
        rounds.append({"pipeline_s": pipeline_s, "bare_fit_s": fit_s, "stages_s": stages.seconds,
                       "peak_rss_delta_mb": memory.delta_mb})
    best = min(rounds, key=lambda r: r["pipeline_s"])
    bare = min(r["bare_fit_s"] for r in rounds)
    stages_s = dict(best["stages_s"])
    stages_s["other"] = best["pipeline_s"] - sum(stages_s.values())
    return {
        "kind": kind, "rows_fitted": int(len(y)), "features": int(X.shape[1]),
        "candles_per_symbol": int(len(next(iter(candles.values())))), "symbols": n_symbols,
        "pipeline_s": best["pipeline_s"], "bare_fit_s": bare, "ratio": best["pipeline_s"] / bare,
        "overhead_s": best["pipeline_s"] - bare, "stages_s": stages_s,
        "fit_in_pipeline_s": stages_s["fit"],
        "ratio_vs_fit_in_pipeline": best["pipeline_s"] / stages_s["fit"],
        "peak_rss_delta_mb": first.delta_mb, "tracemalloc_peak_mb": traced_peak, "rounds": rounds,
    }


def _in_child(args: tuple[str, int, float, int, int]) -> dict[str, Any]:
    return bench_kind(*args)


def print_table(results: list[dict[str, Any]]) -> None:
    head = (f"{'kind':<11}{'rows':>7}{'pipeline s':>12}{'bare fit s':>12}{'ratio':>8}{'dataset':>9}"
            f"{'fit':>8}{'calib':>8}{'validate':>10}{'other':>8}{'RSS MB':>8}{'traced MB':>10}")
    print(head)
    print("-" * len(head))
    for r in results:
        s = r["stages_s"]
        flag = "" if r["ratio"] <= TARGET_RATIO else "  > target"
        print(f"{r['kind']:<11}{r['rows_fitted']:>7}{r['pipeline_s']:>12.2f}{r['bare_fit_s']:>12.2f}"
              f"{r['ratio']:>8.2f}{s.get('dataset', 0):>9.2f}{s.get('fit', 0):>8.2f}"
              f"{s.get('calibrate_fit', 0):>8.2f}{s.get('validate', 0):>10.2f}{s.get('other', 0):>8.2f}"
              f"{r['peak_rss_delta_mb']:>8.0f}{r['tracemalloc_peak_mb']:>10.0f}{flag}")
    total_p = sum(r["pipeline_s"] for r in results)
    total_b = sum(r["bare_fit_s"] for r in results)
    print(f"{'all':<11}{'':>7}{total_p:>12.2f}{total_b:>12.2f}{total_p / total_b:>8.2f}")
    print(f"target: pipeline <= {TARGET_RATIO:.2f} x bare fit; stages in seconds (dataset = features + "
          "targets, calib = fitting the confidence, validate = holdout metrics, baselines, trading)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kinds", default=",".join(KINDS))
    parser.add_argument("--symbols", type=int, default=3, help="number of simulated symbols (max 5)")
    parser.add_argument("--days", type=float, default=7.0)
    parser.add_argument("--repeat", type=int, default=1, help="timed rounds per kind (the best is kept)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = parser.parse_args()
    kinds = [k.strip() for k in args.kinds.split(",") if k.strip()]
    unknown = sorted(set(kinds) - set(KINDS))
    if unknown:
        parser.error(f"unknown kinds {unknown}; choose from {', '.join(KINDS)}")

    os.environ.setdefault("MODEL_STORE_DIR", str(ROOT / "bench" / "results" / "store"))
    context = mp.get_context("spawn")
    results = []
    for kind in kinds:
        with context.Pool(1) as pool:  # a fresh interpreter per kind: clean memory figures
            result = pool.apply(_in_child, ((kind, args.symbols, args.days, args.repeat, args.seed),))
        results.append(result)
        print(f"{kind}: pipeline {result['pipeline_s']:.2f}s, bare fit {result['bare_fit_s']:.2f}s, "
              f"ratio {result['ratio']:.2f}", file=sys.stderr, flush=True)
    print_table(results)

    import numpy as np
    import sklearn
    import torch
    import xgboost

    report = {
        "created": datetime.now(UTC).isoformat(), "days": args.days, "symbols": args.symbols,
        "repeat": args.repeat, "seed": args.seed, "target_ratio": TARGET_RATIO,
        "machine": {
            "python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform(),
            "load_avg_1m": os.getloadavg()[0], "numpy": np.__version__, "sklearn": sklearn.__version__,
            "xgboost": xgboost.__version__, "torch": torch.__version__,
            "torch_threads": torch.get_num_threads(),
        },
        "results": results,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"train-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
    path.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")


if __name__ == "__main__":
    main()
