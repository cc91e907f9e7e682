"""Re-score a finished replay's served champions on the candles: what the replay table does not show.

    .venv/bin/python scripts/rescore_replay.py /tmp/replay-after /work/shared/data/candles/binance-2021

Per kind, pooled over the steps (each step's champion on the 12 hours after it, rows it never trained on,
as `app.services.replay.score` picks them): the skill against *each* baseline with its 95% block-bootstrap
interval (the replay table uses each period's strongest), QLIKE of the volatility model and of each
baseline, the price model's shrinkage per step, and the momentum confidence's reliability table. Reads the
replay's state.json and model store and the 1m CSV candles of the folder given (a script run by hand).
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from app.features import required_warmup
from app.ml import losses, metrics
from app.ml.base import BaseModel
from app.ml.dataset import build_dataset
from app.ml.evaluation import RowScores, score, skill_estimate
from app.ml.validation import unseen


def load_csv(folder: Path, symbol: str) -> pd.DataFrame:
    df = pd.read_csv(folder / f"{symbol}_1m.csv")
    df.index = pd.to_datetime(df.timestamp_ms, unit="ms", utc=True).dt.as_unit("ms")
    df.index.name = "ts"
    return df[["open", "high", "low", "close", "volume"]].astype("float64")


def main() -> None:
    root = Path(sys.argv[1]) / "replays/real"
    folder = Path(sys.argv[2]) if len(sys.argv) > 2 else Path("/work/shared/data/candles/binance-2021")
    state = json.loads((root / "state.json").read_text())
    models = {}
    for d in (root / "store").glob("model_*"):
        meta = json.loads((d / "metadata.json").read_text())
        models[meta["name"]] = d
    symbols = state["spec"]["symbols"]
    data = {s: load_csv(folder, s) for s in symbols}
    every = int(state["spec"]["every_hours"] * 3600_000)
    cache = {}
    out = {}
    for kind in ("volatility", "price", "momentum"):
        parts = []
        for step in state["steps"]:
            name = step["champions"].get(kind)
            if not name:
                continue
            if name not in cache:
                d = models[name]
                cache[name] = BaseModel.load_artifacts(d, json.loads((d / "config.json").read_text()))
            m = cache[name]
            a = step["as_of_ms"]
            warm = required_warmup(list(m.features), m.timeframe)
            lo = pd.Timestamp(a - (warm + 61) * 60_000, unit="ms", tz="UTC")
            hi = pd.Timestamp(a + every + (int(m.horizon) + 1) * 60_000, unit="ms", tz="UTC")
            ds = build_dataset(m, {s: c[(c.index >= lo) & (c.index <= hi)] for s, c in data.items()})
            mask = (ds.ts_ms >= a) & (ds.ts_ms < a + every) & unseen(m, ds)
            if mask.any():
                parts.append((m, score(m, ds.subset(mask))))
        if not parts:  # a replay of some kinds only (e.g. --models with the volatility definitions)
            continue
        y = np.concatenate([sc.ds.y for _, sc in parts])
        pred = np.concatenate([sc.pred for _, sc in parts])
        ts = np.concatenate([sc.ds.ts_ms for _, sc in parts])
        sym = np.concatenate([sc.ds.meta["symbol"].to_numpy() for _, sc in parts])
        loss = np.concatenate([sc.loss for _, sc in parts])
        h = int(parts[0][0].horizon)
        res = {"rows": int(len(y))}
        names = sorted(set.intersection(*[set(sc.baseline_losses) for _, sc in parts]))
        for b in names:
            bl = np.concatenate([sc.baseline_losses[b] for _, sc in parts])
            root_skill = not parts[0][0].is_classifier
            est = skill_estimate(RowScores(kind, sym, ts, loss, bl, b, h, 60_000, root_skill))
            res[f"skill_vs_{b}"] = [round(est.skill, 4), [round(v, 4) for v in est.interval]]
            for symbol in symbols:  # each symbol alone too
                one = sym == symbol
                est = skill_estimate(RowScores(kind, sym[one], ts[one], loss[one], bl[one], b, h, 60_000,
                                               root_skill))
                res[f"skill_vs_{b}_{symbol}"] = [round(est.skill, 4), [round(v, 4) for v in est.interval]]
        if kind == "volatility":
            res["qlike_model"] = round(float(np.mean(losses.qlike(y, pred))), 4)
            model_qlike = losses.qlike(y, pred)
            for b in names:
                f = np.concatenate([sc.forecasts[b] for _, sc in parts])
                res[f"qlike_{b}"] = round(float(np.mean(losses.qlike(y, f))), 4)
                # QLIKE skill 1 - QLIKE / QLIKE_b, with the same block-bootstrap interval over time
                est = skill_estimate(RowScores(kind, sym, ts, model_qlike, losses.qlike(y, f), b, h, 60_000,
                                               False))
                res[f"qlike_skill_vs_{b}"] = [round(est.skill, 4), [round(v, 4) for v in est.interval]]
        if kind == "price":
            res["served_zero_share"] = round(float(np.mean(pred == 0.0)), 4)
            res["shrinkage_by_step"] = [round(float(m.shrinkage_), 3) for m, _ in parts]
        if kind == "momentum":
            conf = np.concatenate([sc.confidence for _, sc in parts])
            hit = np.concatenate([parts[i][0].hits(sc.ds.y, sc.pred) for i, (_, sc) in enumerate(parts)])
            table = metrics.reliability_table(conf, hit, metrics.CONFIDENCE_EDGES)
            res["reliability"] = {k: table[k] for k in table if k != "bins"}
            res["bins"] = [{k: (round(v, 3) if isinstance(v, float) else v) for k, v in b.items()}
                       for b in table["bins"]]
            res["answers_accelerating_share"] = round(float(np.mean(pred == 1)), 4)
            res["label_accelerating_share"] = round(float(np.mean(y == 1)), 4)
        out[kind] = res
    print(json.dumps(out, indent=1, default=float))


if __name__ == "__main__":
    main()
