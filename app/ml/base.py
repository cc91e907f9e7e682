"""The template every model kind shares: dataset, split, fit, calibration, answer, save and load.

A kind module only says which estimator it fits, which target it learns, how it saves the estimator and
how it states its confidence (as freqai's base model owns the loop and a model file is ~60 lines).
Conventions are scikit-learn's: `__init__` stores hyperparameters, `fit(X, y)` returns self, fitted
attributes end in `_`.
"""

from __future__ import annotations

import functools
import inspect
import json
import math
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from threadpoolctl import ThreadpoolController

from app.core.errors import BadInput, IntegrityError
from app.data.frames import OHLCV, TIMEFRAME_MS, index_ms, timeframe_ms
from app.ml.splits import calibration_split, chronological_split

_COMMON = ("features", "horizon", "timeframe", "seed", "train_ratio", "calibration_ratio")


@functools.cache
def _thread_pools() -> ThreadpoolController:
    """Found once: scanning the loaded native libraries costs ~4 ms, too much to repeat on every fit."""
    return ThreadpoolController()


def _single_threaded() -> AbstractContextManager[object]:
    """One BLAS/OpenMP thread per fit: parallelism comes from running several jobs on workers."""
    return _thread_pools().limit(limits=1)


def jsonable(value: Any) -> Any:
    """numpy scalars and arrays -> plain JSON types; NaN/inf -> None (config.json must stay valid JSON)."""
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | np.ndarray):
        return [jsonable(v) for v in value]
    if isinstance(value, np.integer | np.bool_):
        return value.item()
    if isinstance(value, float | np.floating):
        value = float(value)
        return value if math.isfinite(value) else None
    return value


class BaseModel(ABC):
    kind: ClassVar[str]
    model_type: ClassVar[str]
    artifact_file: ClassVar[str]
    is_classifier: ClassVar[bool] = False
    needs_context: ClassVar[bool] = False  # the answer needs the latest close / volatility (price)
    default_features: ClassVar[tuple[str, ...]]
    baseline_names: ClassVar[tuple[str, ...]]
    description: ClassVar[str]

    def __init__(
        self,
        *,
        features: Iterable[str] | None = None,
        horizon: int | None = None,
        timeframe: str = "1m",
        seed: int = 42,
        train_ratio: float = 0.8,
        calibration_ratio: float = 0.2,
    ) -> None:
        timeframe_ms(timeframe)
        self.features = list(features) if features is not None else list(self.default_features)
        self.timeframe = timeframe
        self.horizon = int(horizon) if horizon is not None else self.default_horizon(timeframe)
        self.seed = seed
        self.train_ratio = train_ratio
        self.calibration_ratio = calibration_ratio
        self.check_horizon(self.horizon, timeframe)
        self.training_: dict = {}
        self.performance_: dict = {}

    # -- what a kind provides ------------------------------------------------------------------------
    @classmethod
    def default_horizon(cls, timeframe: str) -> int:
        return 5

    @classmethod
    def check_horizon(cls, horizon: int, timeframe: str) -> None:
        if horizon < 1:
            raise BadInput(f"horizon must be at least 1 bar, got {horizon}")

    @abstractmethod
    def target(self, candles: pd.DataFrame) -> pd.Series:
        """The label of each row, from bars t+1..t+h only (see app.ml.targets)."""

    @abstractmethod
    def _fit_estimator(self, X: np.ndarray, y: np.ndarray) -> None:
        """Fit `self.estimator_` on the fit rows (never the calibration slice nor the holdout)."""

    @abstractmethod
    def _raw(self, X: np.ndarray) -> np.ndarray:
        """Classifiers: an uncalibrated score for class 1; regressors: the prediction in target units."""

    @abstractmethod
    def _calibrate(self, y: np.ndarray, raw: np.ndarray, meta: pd.DataFrame | None) -> dict:
        """JSON-able parameters of the confidence, fitted on the calibration slice only."""

    @abstractmethod
    def _outputs(self, raw: np.ndarray, meta: pd.DataFrame | None) -> tuple[np.ndarray, np.ndarray | None]:
        """(predictions, stated confidence per row or None) from raw outputs."""

    @abstractmethod
    def _answer(self, prediction: float, confidence: float | None, context: pd.Series | None) -> Any:
        """The kind's answer shape (DESIGN 4) for one row."""

    @abstractmethod
    def _save_estimator(self, path: Path) -> dict:
        """Write the estimator in a safe format; return what else rebuilding it needs (JSON-able)."""

    @abstractmethod
    def _load_estimator(self, path: Path, state: dict) -> None: ...

    # -- parameters ----------------------------------------------------------------------------------
    @classmethod
    def _param_names(cls) -> list[str]:
        names: list[str] = []
        for klass in cls.__mro__:
            init = klass.__dict__.get("__init__")
            if init is None:
                continue
            for p in inspect.signature(init).parameters.values():
                variadic = p.kind in (p.VAR_KEYWORD, p.VAR_POSITIONAL)
                if p.name != "self" and not variadic and p.name not in names:
                    names.append(p.name)
        return names

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self._param_names()}

    def set_params(self, **params: Any) -> BaseModel:
        unknown = sorted(set(params) - set(self._param_names()))
        if unknown:
            known = self._param_names()
            raise BadInput(f"unknown parameters {unknown} for {type(self).__name__}; known: {known}")
        for name, value in params.items():
            setattr(self, name, value)
        return self

    @property
    def hyperparams(self) -> dict[str, Any]:
        """The estimator's hyperparameters (and seed), without features/horizon/timeframe."""
        return {k: v for k, v in self.get_params().items() if k not in _COMMON or k == "seed"}

    @property
    def bar_ms(self) -> int:
        return TIMEFRAME_MS[self.timeframe]

    # -- fit -----------------------------------------------------------------------------------------
    def fit(self, X: pd.DataFrame, y: Iterable[float], meta: pd.DataFrame | None = None) -> BaseModel:
        """Fit on the earlier rows of X and calibrate the confidence on its last slice (embargoed).

        X must be time-ordered with a DatetimeIndex (or `meta['ts_ms']`), so the calibration slice is
        carved by time; nothing outside X is touched, so a holdout kept apart stays unseen.
        """
        X = self._frame(X, self.features)
        y = np.asarray(y, dtype="float64")
        if len(y) != len(X) or np.isnan(y).any():
            raise BadInput("y must have one finite label per row of X (drop unlabelled rows first)")
        if meta is not None:
            ts = meta["ts_ms"].to_numpy()
        elif isinstance(X.index, pd.DatetimeIndex):
            ts = index_ms(X.index)
        else:
            raise BadInput("X needs a DatetimeIndex (or pass meta with ts_ms) to carve the calibration slice")
        cut = calibration_split(ts, self.horizon, self.bar_ms, self.calibration_ratio)
        values = X.to_numpy(dtype="float64")
        self.feature_names_ = list(self.features)
        self.n_features_in_ = len(self.feature_names_)
        # One thread: the service trains several models side by side, and OpenMP pools fighting over
        # shared cores run ~10x slower than one thread each.
        with _single_threaded():
            self._fit_estimator(values[cut.train], y[cut.train])
            raw_cal = self._raw(values[cut.holdout])
        cal_meta = meta[cut.holdout] if meta is not None else None
        calibration = self._calibrate(y[cut.holdout], raw_cal, cal_meta)
        self.calibration_ = jsonable(
            {"fit_rows": int(cut.train.sum()), "calibration_rows": int(cut.holdout.sum()),
             "labels": self._label_stats(y), **calibration}
        )
        return self

    def _label_stats(self, y: np.ndarray) -> dict:
        """Statistics of the TRAIN labels the naive baselines use (never the holdout's)."""
        return {"mean": float(np.mean(y)), "majority": int(np.mean(y) >= 0.5)}

    def train_on(
        self, candles_by_symbol: Mapping[str, pd.DataFrame], data_source: str | None = None
    ) -> BaseModel:
        """The whole template: dataset -> chronological split with embargo -> fit -> holdout metrics."""
        from app.ml.dataset import build_dataset
        from app.ml.dissimilarity import attach_reference
        from app.ml.validation import evaluate_dataset

        ds = build_dataset(self, candles_by_symbol)
        split = chronological_split(ds.ts_ms, self.horizon, self.bar_ms, self.train_ratio)
        train, holdout = ds.subset(split.train), ds.subset(split.holdout)
        self.fit(train.X, train.y, train.meta)
        attach_reference(self, train.X)  # lets serving flag inputs unlike anything seen in training
        first, last = int(ds.ts_ms.min()), int(ds.ts_ms.max())
        self.training_ = {
            "symbols": sorted(candles_by_symbol), "data_points": len(train), "holdout_points": len(holdout),
            "train_ratio": self.train_ratio, "validation_ratio": round(1.0 - self.train_ratio, 10),
            "calibration_ratio": self.calibration_ratio, "embargo_bars": split.embargo_bars,
            "window": _span(last - first + self.bar_ms), "timeframe": self.timeframe,
            "data_source": data_source or "unknown",
            "train_start": _iso(int(train.ts_ms.min())), "train_end": _iso(int(train.ts_ms.max())),
            "train_end_ms": int(train.ts_ms.max()), "holdout_start": _iso(split.cut_ms),
            # The last candle the window held: drift's "unseen" hours start after it (a train row's label
            # and the purged rows after it reach past train_end_ms).
            "window_end_ms": max(int(index_ms(c.index).max()) for c in candles_by_symbol.values() if len(c)),
        }
        metrics = evaluate_dataset(self, holdout, window=self.training_["window"])
        self.performance_ = {**metrics, **_seed_aliases(metrics)}
        return self

    def train(
        self,
        symbols: Iterable[str],
        timeframe: str | None = None,
        lookback_bars: int | None = None,
        prediction_horizon: int | None = None,
        days_back: float = 7,
    ) -> BaseModel:
        """Train on the newest stored candles (default: 7 days) of `symbols` (the seed's API)."""
        from app.data.frames import bars_per_day
        from app.features import required_warmup
        from app.ml.backend import get_backend

        if timeframe is not None and timeframe != self.timeframe:
            type(self)(timeframe=timeframe)  # validates the timeframe and its default horizon
            self.timeframe = timeframe
            if prediction_horizon is None:
                self.horizon = self.default_horizon(timeframe)
        if prediction_horizon is not None:
            self.check_horizon(int(prediction_horizon), self.timeframe)
            self.horizon = int(prediction_horizon)
        bars = int(lookback_bars or days_back * bars_per_day(self.timeframe))
        backend = get_backend()
        warmup = required_warmup(self.features, self.timeframe)
        candles = backend.load_window(symbols, self.timeframe, bars + warmup)
        return self.train_on(candles, data_source=backend.data_source_of(candles))

    def backtest(self, symbols: Iterable[str], days_back: float = 7, **kwargs: Any) -> dict:
        """Metrics on the newest `days_back` days' holdout not seen in training (see ValidationPipeline)."""
        from app.ml.validation import ValidationPipeline

        return ValidationPipeline(**kwargs).backtest_model(self, symbols=list(symbols), days_back=days_back)

    # -- predict -------------------------------------------------------------------------------------
    def _require_fitted(self) -> None:
        if not hasattr(self, "feature_names_"):
            raise BadInput(f"{type(self).__name__} is not trained yet; call train(...) or fit(X, y) first")

    def check_features(self, columns: Iterable[str], expected: Iterable[str] | None = None) -> None:
        """Refuse features that differ from those the model was trained on (names, not order)."""
        if expected is None:
            expected = getattr(self, "feature_names_", self.features)
        expected = list(expected)
        given = [str(c) for c in columns]
        missing = [f for f in expected if f not in given]
        extra = [c for c in given if c not in expected]
        if missing or extra:
            raise IntegrityError(
                f"{self.kind} model was trained on features {expected}; asked with {given} "
                f"(missing {missing}, unexpected {extra}). Compute exactly these, e.g. "
                f"app.features.compute_features(candles, {expected})"
            )

    def _frame(self, X: pd.DataFrame | np.ndarray, features: list[str]) -> pd.DataFrame:
        if isinstance(X, np.ndarray):
            if X.ndim != 2 or X.shape[1] != len(features):
                raise IntegrityError(f"expected a 2-D array with {len(features)} columns: {features}")
            return pd.DataFrame(X, columns=features)
        self.check_features(X.columns, features)
        return X[features]

    def outputs(
        self, X: pd.DataFrame, meta: pd.DataFrame | None = None
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """(predictions, stated confidences) for many rows: what validation checks against outcomes."""
        self._require_fitted()
        values = self._frame(X, self.feature_names_).to_numpy("float64")
        with _single_threaded():
            raw = self._raw(values)
        return self._outputs(raw, meta)

    def predict(
        self,
        X: pd.DataFrame | np.ndarray | None = None,
        *,
        symbol: str | None = None,
        current_features: pd.DataFrame | None = None,
    ) -> Any:
        """With X alone: an array of predictions (scikit-learn style). With `symbol` and/or
        `current_features` (feature columns, or raw OHLCV candles): the kind's answer for the last row."""
        self._require_fitted()
        if X is not None and symbol is None and current_features is None:
            return self.outputs(X)[0]
        frame = current_features if current_features is not None else X
        if frame is None:
            if symbol is None:
                raise BadInput("pass symbol='BTC-USDT' (latest stored candles) or current_features=<frame>")
            return self._answer_from_candles(self._latest(symbol))
        if not isinstance(frame, pd.DataFrame) or frame.empty:
            raise BadInput("current_features must be a non-empty DataFrame")
        columns = set(map(str, frame.columns))
        is_candles = set(OHLCV) <= columns <= set(OHLCV) | {"ts"}
        if is_candles and not set(self.feature_names_) <= columns:
            return self._answer_from_candles(frame)
        self.check_features(frame.columns)
        candles = self._latest(symbol) if self.needs_context and symbol is not None else None
        return self.answer(frame.iloc[[-1]], candles)

    def answer(self, features_row: pd.DataFrame, candles: pd.DataFrame | None = None) -> Any:
        """The kind's answer for the last row of `features_row`; `candles` give the close and volatility."""
        from app.ml.dataset import SCALE_WINDOW, context_frame

        self._require_fitted()
        row = self._frame(features_row.iloc[[-1]], self.feature_names_)
        context = None
        if candles is not None and not candles.empty:
            if isinstance(row.index, pd.DatetimeIndex):
                candles = candles.loc[: row.index[-1]]
            context = context_frame(candles.iloc[-(SCALE_WINDOW + 1):]).iloc[[-1]]
        if self.needs_context and context is None:
            raise BadInput(f"a {self.kind} answer needs the latest candles: pass symbol= or raw candles")
        return self._answer_row(row, context)

    def _answer_row(self, row: pd.DataFrame, context: pd.DataFrame | None) -> Any:
        if row.isna().to_numpy().any():
            missing = row.columns[row.isna().iloc[0]].tolist()
            raise BadInput(f"features of the last row are missing (NaN): {missing}")
        prediction, confidence = self._outputs(self._raw(row.to_numpy("float64")), context)
        conf = None if confidence is None else float(confidence[0])
        return self._answer(float(prediction[0]), conf, None if context is None else context.iloc[0])

    def _answer_from_candles(self, candles: pd.DataFrame) -> Any:
        from app.ml.dataset import latest_rows

        row, context = latest_rows(self, candles)
        return self._answer_row(self._frame(row, self.feature_names_), context)

    def _latest(self, symbol: str) -> pd.DataFrame:
        from app.features import required_warmup
        from app.ml.backend import get_backend
        from app.ml.dataset import SCALE_WINDOW

        bars = max(required_warmup(self.feature_names_, self.timeframe), SCALE_WINDOW) + 2
        return get_backend().latest_candles(symbol, self.timeframe, bars)

    # -- save / load ---------------------------------------------------------------------------------
    def save_artifacts(self, directory: Path) -> dict:
        """Write `artifact_file` into `directory`; return the config that rebuilds the model with it."""
        self._require_fitted()
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        state = self._save_estimator(directory / self.artifact_file)
        config = {
            "kind": self.kind, "model_type": self.model_type, "artifact_file": self.artifact_file,
            "description": self.description, "params": self.get_params(), "hyperparams": self.hyperparams,
            "features": self.feature_names_, "horizon": self.horizon, "timeframe": self.timeframe,
            "calibration": self.calibration_, "training": self.training_, "performance": self.performance_,
            "estimator": state,
        }
        config = jsonable(config)
        json.dumps(config, allow_nan=False)  # fail here, not when STORE writes config.json
        return config

    @classmethod
    def load_artifacts(cls, directory: Path, config: dict) -> BaseModel:
        """Rebuild a model from `save_artifacts` output (safe formats only; no pickle)."""
        klass = cls
        if cls is BaseModel or config.get("kind") != cls.kind:
            from app.ml.registry import model_class_for

            klass = model_class_for(config["kind"])
        model = klass(**config["params"])
        model.feature_names_ = list(config["features"])
        model.n_features_in_ = len(model.feature_names_)
        model.calibration_ = dict(config.get("calibration") or {})
        model.training_ = dict(config.get("training") or {})
        model.performance_ = dict(config.get("performance") or {})
        model._load_estimator(Path(directory) / klass.artifact_file, dict(config.get("estimator") or {}))
        return model


def _iso(ms: int) -> str:
    return pd.Timestamp(ms, unit="ms", tz="UTC").isoformat()


def _span(ms: int) -> str:
    days = ms / 86_400_000
    return f"{days:g}d" if days == int(days) else f"{ms / 3_600_000:.1f}h"


def _seed_aliases(metrics: dict) -> dict:
    """The seed's metadata names (backtest_accuracy, ...) beside the plain ones."""
    names = ("accuracy", "precision", "recall", "f1", "window")
    return {f"backtest_{k}": metrics[k] for k in names if k in metrics}
