"""Where the volatility model wins or loses against HAR-RV: its stages scored on the same served rows.

    flock /tmp/mlpipe-bench.lock nice -n 5 .venv/bin/python scripts/vol_stages_real_data.py \
        /work/shared/data/candles/binance-2021 --from 2021-04-10 --to 2021-04-20

Every `--every` hours (as the replay does) a volatility model is trained on the 7 days before the step
(`train_on`, no walk-forward folds) and scored on the next 12 hours' rows it never saw, exactly as
scripts/rescore_replay.py picks them. On those rows: QLIKE of the full model, of its linear stage alone
(HAR lags + Fourier profile, the trees off), of the HAR lags alone (no profile), each with the model's own
level factor refitted on its calibration slice, beside HAR-RV and persistence. A script run by hand on
real candles (never by tests or defaults).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd

from app.features import required_warmup
from app.ml import baselines, har, losses
from app.ml.dataset import build_dataset
from app.ml.evaluation import score
from app.ml.kinds.volatility import VolatilityRegressor, variance_level
from app.ml.splits import calibration_split, chronological_split
from app.ml.validation import unseen

DAY_MS = 86_400_000
MIN_MS = 60_000


def load_csv(folder: Path, symbol: str) -> pd.DataFrame:
    df = pd.read_csv(folder / f"{symbol}_1m.csv")
    df.index = pd.to_datetime(df.timestamp_ms, unit="ms", utc=True).dt.as_unit("ms")
    df.index.name = "ts"
    return df[["open", "high", "low", "close", "volume"]].astype("float64")


def cut(data: dict[str, pd.DataFrame], lo_ms: int, hi_ms: int) -> dict[str, pd.DataFrame]:
    lo, hi = pd.Timestamp(lo_ms, unit="ms", tz="UTC"), pd.Timestamp(hi_ms, unit="ms", tz="UTC")
    return {s: c[(c.index >= lo) & (c.index <= hi)] for s, c in data.items()}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("folder", type=Path)
    parser.add_argument("--symbols", default="BTC-USDT,ETH-USDT")
    parser.add_argument("--from", dest="start", default="2021-04-10")
    parser.add_argument("--to", dest="end", default="2021-04-20")
    parser.add_argument("--every", type=float, default=12.0, help="hours between steps")
    parser.add_argument("--config", default='{"max_iter": 200, "learning_rate": 0.05, "max_leaf_nodes": 31}')
    parser.add_argument("--features", default="natr_14,realized_vol_30,realized_vol_60,realized_vol_240,"
                        "bb_width_20,range_pct,volume_ratio_20,hour_sin,hour_cos")
    parser.add_argument("--horizon", type=int, default=60)
    args = parser.parse_args()
    data = {s: load_csv(args.folder, s) for s in args.symbols.split(",")}
    every = int(args.every * 3_600_000)
    start = int(pd.Timestamp(args.start, tz="UTC").value // 1_000_000)
    end = int(pd.Timestamp(args.end, tz="UTC").value // 1_000_000)
    params = {**json.loads(args.config), "features": args.features.split(","), "horizon": args.horizon}
    cols: dict[str, list[np.ndarray]] = {}
    for step in range(start, end + 1, every):
        model = VolatilityRegressor(**params)
        warm = required_warmup(list(model.features), model.timeframe)
        start_ms = step - 7 * DAY_MS - warm * MIN_MS + MIN_MS
        history = cut(data, start_ms - int(model.history_days() * DAY_MS), start_ms - MIN_MS)
        model.train_on(cut(data, start_ms, step - MIN_MS), walk_forward_folds=0, history=history)
        variants = stage_models(model, cut(data, step - 7 * DAY_MS - warm * MIN_MS + MIN_MS, step - MIN_MS))
        hi = step + every + (args.horizon + 1) * MIN_MS
        ds = build_dataset(model, cut(data, step - (warm + 61) * MIN_MS, hi))
        ds = ds.subset((ds.ts_ms >= step) & (ds.ts_ms < step + every) & unseen(model, ds))
        scored = score(model, ds)
        row = {"y": ds.y, "model": scored.pred, **{b: scored.forecasts[b] for b in ("har_rv", "persistence")}}
        X = np.asarray(ds.X, dtype="float64")
        for name, f in variants.items():
            row[name] = f(X, ds.meta)
        for k, v in row.items():
            cols.setdefault(k, []).append(np.asarray(v, dtype="float64"))
        cols.setdefault("step", []).append(np.full(len(ds.y), step, dtype="float64"))
        gate = {k: model.calibration_.get(k) for k in ("trees", "trees_gain", "level")}
        profile = getattr(model, "history_profile_", None)
        print(pd.Timestamp(step, unit="ms"), len(ds.y), gate, profile and profile["days"],
              {k: round(float(np.mean(losses.qlike(ds.y, v))), 4) for k, v in row.items() if k != "y"},
              flush=True)
    y = np.concatenate(cols.pop("y"))
    cols.pop("step")
    print("rows", len(y))
    for k, v in cols.items():
        f = np.concatenate(v)
        print(f"{k:28s} QLIKE {np.mean(losses.qlike(y, f)):.4f}  MSE {np.mean((y - f) ** 2):.3e}  "
              f"mean(f)/mean(y) {np.mean(f) / np.mean(y):.3f}")


def stage_models(model: VolatilityRegressor, candles: dict[str, pd.DataFrame]) -> dict:
    """Forecasts of the fitted model's stages, each with a level factor fitted on the calibration slice."""
    ds = build_dataset(model, candles)
    split = chronological_split(ds.ts_ms, model.horizon, model.bar_ms, model.train_ratio)
    train = ds.subset(split.train)
    c = calibration_split(train.ts_ms, model.horizon, model.bar_ms, model.calibration_ratio)
    fit, cal = train.subset(c.train), train.subset(c.holdout)
    Xf, Xc = np.asarray(fit.X, dtype="float64"), np.asarray(cal.X, dtype="float64")
    _, _, trees = model._roles()
    no_profile = VolatilityRegressor(**{**model.get_params(), "profile_harmonics": 0, "max_iter": 1})
    no_profile.feature_names_ = model.feature_names_
    no_profile._fit_estimator(Xf, np.asarray(fit.y, dtype="float64"))

    def full(X: np.ndarray) -> np.ndarray:
        return model._linear(X) + model.estimator_.predict(X[:, trees])

    stages = {"full": full, "linear": model._linear, "har_only": no_profile._linear}
    out = {}
    # HAR-RV as the baseline fits it (train rows), with the model's robust variance-scale level instead of
    # its own smearing: is a win only the level's scale?
    stats = model.calibration_["labels"]["har"]
    if stats:
        ok = np.isfinite(har.predict(train.meta, stats))
        raw = har.predict(train.meta, stats)[ok] / stats["smearing"]
        har_level = variance_level(np.asarray(train.y)[ok], raw)
        out["har_rv_var_level"] = (lambda X, meta: np.where(
            np.isfinite(har.predict(meta, stats)), har.predict(meta, stats) / stats["smearing"] * har_level,
            baselines.predictions("persistence", meta, model.calibration_["labels"])))
    yc = np.asarray(cal.y, dtype="float64")
    for name, g in stages.items():
        raw_c = np.exp(g(Xc))
        vol_level = float(np.mean(yc / raw_c))  # Duan on the volatility (the model's)
        var_level = float(np.sqrt(np.mean((yc / raw_c) ** 2)))  # on the variance (QLIKE's scale)
        out[f"{name}_vol_level"] = (lambda X, meta, g=g, lv=vol_level: np.exp(g(X)) * lv)
        out[f"{name}_var_level"] = (lambda X, meta, g=g, lv=var_level: np.exp(g(X)) * lv)
        robust = variance_level(yc, raw_c)  # the model's robust variance-scale level, on this slice alone
        out[f"{name}_robust_level"] = (lambda X, meta, g=g, lv=robust: np.exp(g(X)) * lv)
    return out


if __name__ == "__main__":
    main()
