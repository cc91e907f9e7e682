"""The cycle's calls into app.ml: train a definition, score a model on chosen rows, its feature frame.

Scoring old and new models on "the same fresh holdout" needs the metrics of `app.ml.validation` on an
arbitrary slice of time, so this builds the model's dataset from candles (with warm-up before the slice)
and evaluates only the rows at or after `start_ms`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pandas as pd

from app.data.frames import index_ms
from app.features import required_warmup

if TYPE_CHECKING:
    from app.ml.base import BaseModel
    from app.ml.evaluation import RowScores

MIN_EVAL_ROWS = 30


def train(definition: dict[str, Any], training_data: dict[str, pd.DataFrame],
          history: dict[str, pd.DataFrame] | None = None) -> BaseModel:
    """Train one definition on the window and fill its holdout metrics (ML's TrainingPipeline);
    `history` is the candles before the window the model reads (`history_days`), if any."""
    from app.ml import TrainingPipeline
    from app.services.market_data import data_source_of

    source = data_source_of(training_data)  # the window was read from the store
    return TrainingPipeline().train_model({**definition, "data_source": source}, training_data,
                                          history=history)


def history_days(definition: dict[str, Any]) -> float:
    """Days of candles before the window the definition's model reads (0 for most; the volatility model's
    time-of-day profile reads `profile_days`). 0 when the definition does not make a model."""
    from app.ml.training import model_from_definition

    keys = ("type", "kind", "config", "features", "horizon", "timeframe")
    try:
        model = model_from_definition({k: definition[k] for k in keys if k in definition})
        return float(model.history_days())
    except Exception:  # noqa: BLE001 - a broken definition fails in its build, with its own error
        return 0.0


def warmup_bars(model: BaseModel) -> int:
    return int(required_warmup(list(model.features), model.timeframe))


def evaluate(model: BaseModel, candles: dict[str, pd.DataFrame], start_ms: int) -> dict[str, Any] | None:
    """The model's validation metrics on the labelled rows at or after `start_ms`; None if too few."""
    from app.ml.dataset import build_dataset
    from app.ml.validation import evaluate_dataset

    dataset = build_dataset(model, candles)
    mask = dataset.ts_ms >= int(start_ms)
    if int(mask.sum()) < MIN_EVAL_ROWS:
        return None
    rows = dataset.subset(mask)
    span = int(rows.ts_ms.max() - rows.ts_ms.min()) + model.bar_ms
    metrics = evaluate_dataset(model, rows, window=f"{span / 3_600_000:.1f}h")
    return {**metrics, "rows": int(mask.sum())}


def rows_from(model: BaseModel, candles: dict[str, pd.DataFrame], start_ms: int, name: str) -> RowScores:
    """Per-row losses of `model` (and its strongest baseline) on the rows at or after `start_ms` it never
    trained on: what the paired tests of app.ml.comparison take."""
    from app.ml.dataset import build_dataset
    from app.ml.evaluation import row_scores
    from app.ml.validation import unseen

    dataset = build_dataset(model, candles)
    return row_scores(model, dataset.subset((dataset.ts_ms >= int(start_ms)) & unseen(model, dataset)), name)


def feature_rows(
    model: BaseModel, candles: dict[str, pd.DataFrame], start_ms: int, end_ms: int
) -> pd.DataFrame:
    """The model's input features (warmed up, every symbol pooled) for candles in [start_ms, end_ms]."""
    from app.features import compute_features
    from app.ml.dataset import market_of

    warm = warmup_bars(model)
    market = market_of(model, candles)
    parts = []
    for frame in candles.values():
        feats = compute_features(frame, list(model.features), market).iloc[warm:]
        stamps = index_ms(feats.index)
        keep = (stamps >= start_ms) & (stamps <= end_ms)
        parts.append(feats[keep])
    return pd.concat(parts).dropna() if parts else pd.DataFrame(columns=list(model.features))

