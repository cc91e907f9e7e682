"""Holdout validation (DESIGN 5): model vs naive baselines, skill, confidence reliability, trading."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np
import pandas as pd

from app.core.errors import BadInput
from app.ml import baselines, metrics
from app.ml.base import BaseModel, jsonable
from app.ml.dataset import Dataset, build_dataset
from app.ml.splits import chronological_split
from app.ml.trading import backtest_direction


def _classifier_metrics(model: BaseModel, ds: Dataset, pred: np.ndarray, conf: np.ndarray) -> dict:
    p1 = np.where(pred == 1, conf, 1.0 - conf)
    out = metrics.classification(ds.y, pred, p1)
    stats = model.calibration_["labels"]
    accs = {name: float(np.mean(baselines.predictions(name, ds.meta, stats) == ds.y))
            for name in model.baseline_names}
    best = max(accs, key=accs.__getitem__)
    out.update(baselines=accs, baseline=best, baseline_accuracy=accs[best],
               skill=metrics.classifier_skill(out["accuracy"], accs[best]))
    out["reliability"] = metrics.reliability_table(conf, model.hits(ds.y, pred), metrics.CONFIDENCE_EDGES)
    return out


def _regressor_metrics(model: BaseModel, ds: Dataset, pred: np.ndarray, conf: np.ndarray | None) -> dict:
    out = metrics.regression(ds.y, pred)
    stats = model.calibration_["labels"]
    base = {name: baselines.predictions(name, ds.meta, stats) for name in model.baseline_names}
    scores = {name: metrics.regression(ds.y, p) for name, p in base.items()}
    best = min(scores, key=lambda name: scores[name]["rmse"])
    out.update(baselines=scores, baseline=best, baseline_rmse=scores[best]["rmse"],
               skill=metrics.regressor_skill(out["rmse"], scores[best]["rmse"]),
               skill_tstat=metrics.loss_difference_tstat((ds.y - base[best]) ** 2, (ds.y - pred) ** 2,
                                                         model.horizon))
    if conf is not None:
        out["coverage"] = {"band": model.band,
                           **metrics.reliability_table(conf, model.hits(ds.y, pred), metrics.COVERAGE_EDGES)}
    return out


def evaluate_dataset(
    model: BaseModel, ds: Dataset, window: str | None = None, fee_bps: float = 10.0, slippage_bps: float = 2.0
) -> dict:
    """All holdout metrics of one model on rows it never saw (the caller guarantees that)."""
    if len(ds) == 0:
        raise BadInput("no rows to evaluate on")
    pred, conf = model.outputs(ds.X, ds.meta)
    if model.is_classifier:
        out = _classifier_metrics(model, ds, pred, conf)
        if model.kind == "direction":
            out["trading"] = backtest_direction(np.where(pred == 1, 1.0, -1.0), ds.meta, model.timeframe,
                                                fee_bps, slippage_bps)
    else:
        out = _regressor_metrics(model, ds, pred, conf)
    out.update(n=len(ds), n_effective=round(len(ds) / model.horizon, 1), horizon=model.horizon,
               symbols=sorted(ds.meta["symbol"].unique().tolist()), score=100.0 * out["skill"],
               start=_iso(int(ds.ts_ms.min())), end=_iso(int(ds.ts_ms.max())))
    if window is not None:
        out["window"] = window
    return jsonable(out)


def unseen(model: BaseModel, ds: Dataset) -> np.ndarray:
    """Rows whose label window starts after the model's last training label ended (purged by h bars)."""
    end = (model.training_ or {}).get("train_end_ms")
    if end is None:
        return np.ones(len(ds), dtype=bool)
    return ds.ts_ms > int(end) + model.horizon * model.bar_ms


def _iso(ms: int) -> str:
    return pd.Timestamp(ms, unit="ms", tz="UTC").isoformat()


class ValidationPipeline:
    """Backtests of trained models on stored or given candles; the holdout never overlaps training."""

    def __init__(self, train_ratio: float = 0.8, fee_bps: float = 10.0, slippage_bps: float = 2.0) -> None:
        self.train_ratio = train_ratio
        self.fee_bps = fee_bps
        self.slippage_bps = slippage_bps

    def backtest_model(
        self,
        model: BaseModel,
        symbols: Iterable[str] | None = None,
        days_back: float = 7,
        candles: Mapping[str, pd.DataFrame] | None = None,
    ) -> dict:
        """Metrics on the last (1 - train_ratio) of the newest `days_back` days, minus rows the model saw."""
        from app.data.frames import bars_per_day
        from app.features import required_warmup
        from app.ml.backend import get_backend

        if candles is None:
            if symbols is None:
                symbols = model.training_.get("symbols") or []
            bars = int(days_back * bars_per_day(model.timeframe))
            warmup = required_warmup(model.features, model.timeframe)
            candles = get_backend().load_window(symbols, model.timeframe, bars + warmup)
        elif symbols is not None:
            candles = {s: candles[s] for s in symbols}
        ds = build_dataset(model, candles)
        split = chronological_split(ds.ts_ms, model.horizon, model.bar_ms, self.train_ratio)
        return self._evaluate(model, ds, split.holdout & unseen(model, ds), f"{days_back:g}d")

    def evaluate(self, model: BaseModel, candles: Mapping[str, pd.DataFrame]) -> dict:
        """Metrics on every labelled row of `candles` the model did not train on (for drift checks)."""
        ds = build_dataset(model, candles)
        return self._evaluate(model, ds, unseen(model, ds), None)

    def _evaluate(self, model: BaseModel, ds: Dataset, mask: np.ndarray, window: str | None) -> dict:
        if not mask.any():
            raise BadInput(
                "no rows left to evaluate: the window overlaps the model's training data "
                f"(trained up to {model.training_.get('train_end')}); backtest on newer candles"
            )
        return evaluate_dataset(model, ds.subset(mask), window, self.fee_bps, self.slippage_bps)
