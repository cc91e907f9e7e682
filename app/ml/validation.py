"""Holdout validation (DESIGN 5): model vs naive baselines, proper skill with intervals, reliability, trading.

`evaluate_dataset(model, ds)` returns the `performance` dict of a model on rows it never saw:

- classifiers: accuracy, precision, recall, F1, ROC AUC, log loss, Brier; `baselines` {name: accuracy}
  and `baseline_scores` {name: {accuracy, brier, log_loss}} for majority, last move and the train base
  rate; `skill` = 1 - Brier / Brier of the strongest baseline (`baseline`, normally the base rate),
  `brier_skill` against the train base rate, `accuracy_skill` = (acc - acc_b) / (1 - acc_b) beside it;
- regressors: RMSE, MAE, R²; `baselines` {name: {rmse, mae, r2}}; `skill` = 1 - RMSE / RMSE_b of the
  strongest baseline; volatility also QLIKE (its own and each baseline's) and the HAR-RV baseline;
- every metric's 95% block-bootstrap interval in `intervals` (see app.ml.intervals), `skill_interval`,
  `skill_se`, `beats_baseline` (lower end of the skill interval > 0), `n`, `n_times`, `n_effective`,
  `block_bars`, the rows' `start`/`end`; `score` = 100 x skill (the ranking score).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from app.core.errors import BadInput
from app.data.frames import bars_per_day, index_ms
from app.features import required_warmup
from app.ml import baselines, intervals, losses, metrics
from app.ml.backend import get_backend
from app.ml.dataset import Dataset, build_dataset
from app.ml.evaluation import Scored, score
from app.ml.serialize import jsonable
from app.ml.splits import chronological_split
from app.ml.trading import backtest_direction

if TYPE_CHECKING:
    from app.ml.base import BaseModel

AUC_BINS = 64


def _auc_from_histograms(pos: np.ndarray, neg: np.ndarray) -> np.ndarray:
    """ROC AUC from per-bin counts of positives and negatives (ties within a bin count one half)."""
    below = np.cumsum(neg, axis=-1) - neg
    with np.errstate(divide="ignore", invalid="ignore"):
        return (pos * (below + 0.5 * neg)).sum(axis=-1) / (pos.sum(axis=-1) * neg.sum(axis=-1))


def _ratio(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(b > 0, a / np.where(b > 0, b, 1.0), np.nan)


def _classifier_columns(scored: Scored, accuracy_baseline: str, stats: dict) -> tuple[np.ndarray, np.ndarray]:
    y, pred, p1 = scored.ds.y.astype(bool), scored.pred.astype(bool), scored.p1
    best_class = baselines.predictions(accuracy_baseline, scored.ds.meta, stats).astype(bool)
    columns = np.column_stack([
        np.ones(len(y)), y == pred, y & pred, ~y & pred, y & ~pred,
        scored.loss, losses.log_loss(y, p1), scored.baseline_losses[scored.baseline],
        scored.baseline_losses["base_rate"], best_class == y,
    ])
    edges = np.unique(np.quantile(p1, np.linspace(0, 1, AUC_BINS + 1)[1:-1]))
    which = np.searchsorted(edges, p1, side="right")
    hist = np.zeros((len(y), len(edges) + 1))
    hist[np.arange(len(y)), which] = 1.0
    return np.column_stack([columns, hist * y[:, None], hist * ~y[:, None]]), edges


def _classifier_stats(t: np.ndarray, bins: int) -> dict[str, np.ndarray]:
    n, correct, tp, fp, fn, brier, logloss, brier_b, brier_rate, correct_b = (t[..., i] for i in range(10))
    pos, neg = t[..., 10 : 10 + bins], t[..., 10 + bins : 10 + 2 * bins]
    accuracy, accuracy_b = _ratio(correct, n), _ratio(correct_b, n)
    return {
        "accuracy": accuracy, "precision": _ratio(tp, tp + fp), "recall": _ratio(tp, tp + fn),
        "f1": _ratio(2 * tp, 2 * tp + fp + fn), "roc_auc": _auc_from_histograms(pos, neg),
        "log_loss": _ratio(logloss, n), "brier": _ratio(brier, n),
        "brier_skill": 1.0 - _ratio(brier, brier_rate), "skill": 1.0 - _ratio(brier, brier_b),
        "accuracy_skill": _ratio(accuracy - accuracy_b, 1.0 - accuracy_b),
    }


def _classifier_metrics(model: BaseModel, scored: Scored) -> tuple[dict, np.ndarray, Any]:
    ds, stats = scored.ds, model.calibration_["labels"]
    point = metrics.classification(ds.y, scored.pred, scored.p1)
    classes = {n: baselines.predictions(n, ds.meta, stats) for n in scored.forecasts if n != "base_rate"}
    accs = {n: float(np.mean(c == ds.y)) for n, c in classes.items()}
    acc_best = max(accs, key=accs.__getitem__)
    columns, edges = _classifier_columns(scored, acc_best, stats)
    totals = columns.sum(axis=0)
    whole = {k: float(v) for k, v in _classifier_stats(totals, len(edges) + 1).items()}
    out = {
        **point, "log_loss": whole["log_loss"], "brier": whole["brier"],
        "baselines": accs,
        "baseline_scores": {
            n: {"accuracy": float(np.mean((f >= 0.5) == ds.y)) if n != "base_rate" else accs["majority"],
                "brier": float(np.mean(scored.baseline_losses[n])),
                "log_loss": float(np.mean(losses.log_loss(ds.y, f)))}
            for n, f in scored.forecasts.items()
        },
        "baseline": scored.baseline,
        "baseline_brier": float(np.mean(scored.baseline_losses[scored.baseline])),
        "accuracy_baseline": acc_best, "baseline_accuracy": accs[acc_best],
        "skill": whole["skill"], "brier_skill": whole["brier_skill"],
        "accuracy_skill": metrics.classifier_skill(point["accuracy"], accs[acc_best]),
        "reliability": metrics.reliability_table(scored.confidence, model.hits(ds.y, scored.pred),
                                                 metrics.CONFIDENCE_EDGES),
    }

    def stats_of(replicated: np.ndarray) -> dict[str, np.ndarray]:
        stats_ = _classifier_stats(replicated, len(edges) + 1)
        if point["roc_auc"] is not None:  # the binned AUC, moved to the exact one
            stats_["roc_auc"] = stats_["roc_auc"] + (point["roc_auc"] - whole["roc_auc"])
        return stats_

    return out, columns, stats_of


def _regressor_stats(t: np.ndarray, qlike: bool) -> dict[str, np.ndarray]:
    n, se, ae, y, y2, se_b = (t[..., i] for i in range(6))
    out = {
        "rmse": np.sqrt(_ratio(se, n)), "mae": _ratio(ae, n),
        "r2": 1.0 - _ratio(se, y2 - _ratio(y * y, n)), "skill": losses.skill_from_totals(se, se_b, True),
    }
    if qlike:
        out["qlike"] = _ratio(t[..., 6], n)
    return out


def _regressor_metrics(model: BaseModel, scored: Scored) -> tuple[dict, np.ndarray, Any]:
    ds = scored.ds
    with_qlike = model.kind == "volatility"
    out = metrics.regression(ds.y, scored.pred)
    board = {n: metrics.regression(ds.y, f) for n, f in scored.forecasts.items()}
    columns = [np.ones(len(ds)), scored.loss, losses.absolute(ds.y, scored.pred), ds.y, ds.y**2,
               scored.baseline_losses[scored.baseline]]
    if with_qlike:
        columns.append(losses.qlike(ds.y, scored.pred))
        out["qlike"] = float(np.mean(columns[-1]))
        for n, f in scored.forecasts.items():
            board[n]["qlike"] = float(np.mean(losses.qlike(ds.y, f)))
        out["baseline_qlike"] = board[scored.baseline]["qlike"]
    best_rmse = board[scored.baseline]["rmse"]
    out.update(baselines=board, baseline=scored.baseline, baseline_rmse=best_rmse,
               skill=metrics.regressor_skill(out["rmse"], best_rmse))
    out["seed_view"] = _seed_view(model, ds.y, scored.pred)
    if scored.confidence is not None:
        out["coverage"] = {"band": model.band, **metrics.reliability_table(
            scored.confidence, model.hits(ds.y, scored.pred), metrics.COVERAGE_EDGES)}
    return out, np.column_stack(columns), lambda t: _regressor_stats(t, with_qlike)


SEED_VIEW_RULES = {
    "price": "UP: the predicted return over the horizon is above 0",
    "risk": "risky: the predicted excursion is above the mean excursion of the training rows",
    "volatility": "high: the predicted volatility is above the mean of the training rows",
}
SEED_METRICS = ("accuracy", "precision", "recall", "f1")


def _seed_view(model: BaseModel, y: np.ndarray, pred: np.ndarray) -> dict:
    """A regressor's answer read as a yes/no call, so the seed's accuracy/precision/recall/F1 exist for
    every kind: price UP or not, risk or volatility above the TRAIN labels' mean (never the holdout's)."""
    threshold = 0.0 if model.kind == "price" else float(model.calibration_["labels"]["mean"])
    truth, call = np.asarray(y) > threshold, np.asarray(pred) > threshold
    point = metrics.classification(truth, call, call.astype("float64"))
    majority = float(max(truth.mean(), 1.0 - truth.mean())) if len(truth) else None
    return {"rule": SEED_VIEW_RULES.get(model.kind, "above the training mean"), "threshold": threshold,
            **{k: point.get(k) for k in SEED_METRICS}, "baseline_accuracy": majority}


def seed_metrics(performance: Mapping[str, Any]) -> dict:
    """`performance` with the seed's accuracy/precision/recall/f1 on top for regressors (from
    `seed_view`); classifiers have them already."""
    out = dict(performance)
    for key, value in (performance.get("seed_view") or {}).items():
        if key in SEED_METRICS:
            out.setdefault(key, value)
    return out


def evaluate_dataset(
    model: BaseModel,
    ds: Dataset,
    window: str | None = None,
    fee_bps: float = 10.0,
    slippage_bps: float = 2.0,
    *,
    reps: int = intervals.DEFAULT_REPS,
) -> dict:
    """All holdout metrics of one model, with intervals, on rows it never saw (the caller guarantees it)."""
    if len(ds) == 0:
        raise BadInput("no rows to evaluate on")
    scored = score(model, ds)
    if model.is_classifier:
        out, columns, stats_of = _classifier_metrics(model, scored)
        if model.kind == "direction":
            out["trading"] = backtest_direction(np.where(scored.pred == 1, 1.0, -1.0), ds.meta,
                                                model.timeframe, fee_bps, slippage_bps)
    else:
        out, columns, stats_of = _regressor_metrics(model, scored)
    axis = intervals.time_axis(ds.ts_ms)
    difference = axis.means(scored.loss - scored.baseline_losses[scored.baseline])
    block = intervals.block_length(difference, int(model.horizon))
    replicated = intervals.resampler(axis.n_times, block, reps, int(model.seed)).replicate(axis.sums(columns))
    spread = {name: values for name, values in stats_of(replicated).items()}
    out["intervals"] = {name: intervals.percentile_interval(values) for name, values in spread.items()}
    skill_interval = out["intervals"]["skill"]
    out.update(
        skill_interval=skill_interval, skill_se=intervals.standard_error(spread["skill"]),
        beats_baseline=bool(skill_interval is not None and skill_interval[0] > 0),
        skill_tstat=intervals.hac_t(-difference, block),  # Diebold-Mariano: model vs its baseline
        n=len(ds), n_times=axis.n_times, n_effective=round(intervals.effective_n(difference, block), 1),
        block_bars=block, horizon=int(model.horizon), symbols=sorted(ds.meta["symbol"].unique().tolist()),
        score=100.0 * out["skill"], start=_iso(int(ds.ts_ms.min())), end=_iso(int(ds.ts_ms.max())),
        start_ms=int(ds.ts_ms.min()), end_ms=int(ds.ts_ms.max()),
    )
    if window is not None:
        out["window"] = window
    return jsonable(out)


def unseen(model: BaseModel, ds: Dataset) -> np.ndarray:
    """Rows whose label window starts after the model's last training label ended (purged by h bars)."""
    end = (model.training_ or {}).get("train_end_ms")
    if end is None:
        return np.ones(len(ds), dtype=bool)
    return ds.ts_ms > int(end) + int(model.horizon) * model.bar_ms


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
        """Metrics on the last (1 - train_ratio) of the newest `days_back` days, minus rows the model saw.

        `symbols` None (or `...`, as the seed writes it) means the symbols the model was trained on.
        """
        if symbols is Ellipsis:
            symbols = None
        if candles is None:
            if symbols is None:
                symbols = model.training_.get("symbols") or []
            bars = int(days_back * bars_per_day(model.timeframe))
            warmup = required_warmup(list(model.features), model.timeframe)
            candles = get_backend().load_window(symbols, model.timeframe, bars + warmup)
        elif symbols is not None:
            candles = {s: candles[s] for s in symbols}
        ds = build_dataset(model, candles)
        split = chronological_split(ds.ts_ms, model.horizon, model.bar_ms, self.train_ratio)
        return self._evaluate(model, ds, split.holdout & unseen(model, ds), f"{days_back:g}d")

    def validate_on_live_data(
        self,
        model: BaseModel,
        symbol: str | Iterable[str] | None = None,
        hours_back: float = 24,
        candles: Mapping[str, pd.DataFrame] | None = None,
    ) -> dict:
        """`backtest_model`'s metrics (with their intervals) on the newest `hours_back` hours of stored
        candles that the model never saw: rows after the last candle of its training window (holdout
        included). The drift check's numbers (DESIGN 6), for the seed's `check_model_drift`.

        `symbol`: one symbol or several (default: the model's training symbols). Refused with the reason
        when those hours hold no labelled row the model did not see (it was trained on the newest candles).
        """
        if not hours_back or hours_back <= 0:
            raise BadInput(f"hours_back must be positive, got {hours_back!r}")
        trained_on = model.training_.get("symbols") or []
        symbols = [symbol] if isinstance(symbol, str) else list(symbol or trained_on)
        if candles is None:
            bars = int(math.ceil(hours_back * 3_600_000 / model.bar_ms))
            warmup = required_warmup(list(model.features), model.timeframe)
            candles = get_backend().load_window(symbols, model.timeframe, bars + warmup)
        else:
            candles = {s: candles[s] for s in symbols}
        ds = build_dataset(model, candles)
        newest = max(int(index_ms(c.index).max()) for c in candles.values() if len(c))
        start = newest - int(hours_back * 3_600_000) + model.bar_ms
        seen = (model.training_ or {}).get("window_end_ms")
        mask = (ds.ts_ms >= start) & unseen(model, ds)
        if seen is not None:
            mask &= ds.ts_ms > int(seen)
        if not mask.any():
            raise BadInput(
                f"no labelled rows in the newest {hours_back:g} hours of {symbols} that "
                f"{getattr(model, 'name_', type(model).__name__)} did not train on (its window ends "
                f"{_iso(int(seen)) if seen is not None else model.training_.get('train_end')}); "
                "ingest newer candles first"
            )
        out = evaluate_dataset(model, ds.subset(mask), f"{hours_back:g}h", self.fee_bps, self.slippage_bps)
        out = seed_metrics(out)
        out.update(hours_back=hours_back, live_from=_iso(start),
                   seen_until=None if seen is None else _iso(int(seen)))
        return out

    def backtest_ensemble(
        self, ensemble: str, symbols: Iterable[str] | None = None, days_back: float = 7
    ) -> dict:
        """A stored ensemble (by name) scored beside each member and a naive baseline on the same rows,
        after every member's training (`POST /ensembles/{id}/backtest`). The ensemble's `accuracy` and
        `f1` (RMSE and MAE for regressors) are on top; `members` holds each member's."""
        chosen = None if symbols is None else list(symbols)
        return get_backend().backtest_ensemble(ensemble, chosen, days_back)

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
        return seed_metrics(evaluate_dataset(model, ds.subset(mask), window, self.fee_bps, self.slippage_bps))
