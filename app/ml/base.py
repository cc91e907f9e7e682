"""The template every model kind shares: dataset, split, fit, calibration, answer, save and load.

A kind module only says which estimator it fits, which target it learns, how it saves the estimator and
how it states its confidence (as freqai's base model owns the loop and a model file is ~60 lines).

Every kind is a scikit-learn estimator (`BaseEstimator` with `ClassifierMixin` or `RegressorMixin`):
`__init__` stores its parameters unchanged (checked when fitting, never when constructing), `fit(X, y)`
returns self, fitted attributes end in `_`, and `clone`, `get_params`, `set_params`, `Pipeline` and the
searches work on it. Two ways to ask a fitted model meet in `predict`:

- `predict(X)` is scikit-learn's: an array, one prediction per row of the matrix X (class labels for
  classifiers, the target's unit for regressors); `predict_proba(X)` for classifiers.
- `predict(symbol=..., current_features=...)` is the seed's: the kind's answer (DESIGN 4, e.g.
  `{"direction": "UP", "confidence": 0.53}`) for the newest row, from the latest stored candles of
  `symbol`, or from `current_features` (feature columns, or raw OHLCV candles).

A DataFrame X with named columns must hold the model's `features` (selected by name). A plain matrix
is taken as those features in order when its width matches; a matrix of another width fits the estimator
on anonymous columns (`x0`, `x1`, ...), which `predict(X)` serves but the candle answers refuse. Rows
must be in time order: the calibration slice is carved by time (`meta['ts_ms']`, a DatetimeIndex, or
else row order).
"""

from __future__ import annotations

import functools
import json
import numbers
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from types import MappingProxyType
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.utils.validation import validate_data
from threadpoolctl import ThreadpoolController

from app.core.errors import BadInput, IntegrityError
from app.core.logging import get_logger
from app.data.frames import OHLCV, TIMEFRAME_MS, bars_per_day, index_ms, timeframe_ms
from app.features import required_warmup, scale_free_features
from app.ml.backend import get_backend
from app.ml.context import SCALE_WINDOW, context_frame
from app.ml.dataset import build_dataset, latest_rows, model_market_symbols
from app.ml.dissimilarity import attach_reference
from app.ml.errors import EstimatorInputError, NotTrained
from app.ml.serialize import jsonable
from app.ml.splits import calibration_split, chronological_split
from app.ml.validation import ValidationPipeline, evaluate_dataset
from app.ml.walk_forward import DEFAULT_FOLDS, walk_forward

__all__ = ["BaseModel", "jsonable"]

log = get_logger(__name__)

_COMMON = ("features", "horizon", "timeframe", "seed", "train_ratio", "calibration_ratio")
_EMPTY: Mapping[str, Any] = MappingProxyType({})


@functools.cache
def _thread_pools() -> ThreadpoolController:
    """Found once: scanning the loaded native libraries costs ~4 ms, too much to repeat on every fit."""
    return ThreadpoolController()


def _single_threaded() -> AbstractContextManager[object]:
    """One BLAS/OpenMP thread per fit: parallelism comes from running several jobs on workers."""
    return _thread_pools().limit(limits=1)


class BaseModel(BaseEstimator, ABC):
    kind: ClassVar[str]
    model_type: ClassVar[str]
    artifact_file: ClassVar[str]
    is_classifier: ClassVar[bool] = False
    needs_context: ClassVar[bool] = False  # the answer needs the latest close / volatility (price)
    rows_independent: ClassVar[bool] = False  # a row's raw output has the same bits in any matrix (trees)
    default_features: ClassVar[tuple[str, ...]]
    baseline_names: ClassVar[tuple[str, ...]]
    description: ClassVar[str]
    _by_kind: ClassVar[dict[str, type[BaseModel]]] = {}

    # Set by `train_on` (the whole template), empty for a bare `fit`.
    features_given_: Sequence[str] = ()
    feature_substitutions_: Sequence[Mapping[str, str]] = ()
    features_fed_: Sequence[str] = ()
    # The symbols whose candles cross-asset features read (app.features.market_symbols), recorded by
    # `train_on` from its call and saved, so serving reads exactly these at the same times (empty: none).
    market_symbols_: Sequence[str] = ()
    training_: Mapping[str, Any] = _EMPTY
    performance_: Mapping[str, Any] = _EMPTY

    def __init__(
        self,
        *,
        features: Sequence[str],
        horizon: int,
        timeframe: str = "1m",
        seed: int = 42,
        train_ratio: float = 0.8,
        calibration_ratio: float = 0.2,
    ) -> None:
        self.features = features
        self.horizon = horizon
        self.timeframe = timeframe
        self.seed = seed
        self.train_ratio = train_ratio
        self.calibration_ratio = calibration_ratio

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "kind" in cls.__dict__:
            BaseModel._by_kind[cls.kind] = cls  # lets `BaseModel.load_artifacts` rebuild any kind

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = False
        return tags

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "estimator_")

    # -- what a kind provides ------------------------------------------------------------------------
    @classmethod
    def default_horizon(cls, timeframe: str) -> int:
        """The horizon this kind uses on `timeframe` when a definition names none."""
        return 5

    @classmethod
    def check_horizon(cls, horizon: int, timeframe: str) -> None:
        if horizon < 1:
            raise BadInput(f"horizon must be at least 1 bar, got {horizon}")

    def _check_own_params(self) -> None:
        """A kind's checks of its own hyperparameters (run with `check_params`)."""

    @abstractmethod
    def target(self, candles: pd.DataFrame) -> pd.Series:
        """The label of each row, from bars t+1..t+h only (see app.ml.targets)."""

    def baseline_inputs(self, candles: pd.DataFrame) -> dict[str, pd.Series]:
        """Extra per-row inputs a kind's baselines need, all from bars at or before t (HAR-RV's lags)."""
        return {}

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

    def _encode_target(self, y: np.ndarray) -> np.ndarray:
        """The labels as the estimator learns them (classifiers: 0/1 against `classes_`)."""
        return np.asarray(y, dtype="float64")

    # -- parameters ----------------------------------------------------------------------------------
    def check_params(self) -> None:
        """Refuse parameters that cannot work (fit and `model_from_definition` call it; `__init__` never)."""
        timeframe_ms(self.timeframe)
        features = self.features
        if isinstance(features, str) or not isinstance(features, Sequence) or not features:
            raise BadInput(f"features must be a non-empty list of feature names, got {features!r}")
        if not all(isinstance(f, str) for f in features):
            raise BadInput(f"features must be names (strings), got {list(features)!r}")
        horizon = self.horizon
        if isinstance(horizon, bool) or not isinstance(horizon, numbers.Integral):
            raise BadInput(f"horizon must be a whole number of bars, got {horizon!r}")
        self.check_horizon(int(horizon), self.timeframe)
        for name in ("train_ratio", "calibration_ratio"):
            value = getattr(self, name)
            if not isinstance(value, numbers.Real) or not 0.0 < float(value) < 1.0:
                raise BadInput(f"{name} must be between 0 and 1 (exclusive), got {value!r}")
        self._check_own_params()

    def feed_scale_free(self) -> None:
        """Feed each feature in price or volume units in its scale-free form (DESIGN 3), never refuse it.

        `features` becomes the list as fed (so a clone or a retrain keeps it); `features_given_` keeps
        the list as given and `feature_substitutions_` each replacement, both recorded in the metadata.
        """
        given = list(self.features)
        if self.feature_substitutions_ and given == list(self.features_fed_):
            return  # trained again as it was fed: what was given stays on record
        fed, substitutions = scale_free_features(given)
        self.features_given_, self.feature_substitutions_, self.features_fed_ = given, substitutions, fed
        if substitutions:
            log.warning(
                "features fed in their scale-free form", model=type(self).__name__, given=given, fed=fed,
                substitutions={s["given"]: s["fed"] for s in substitutions},
            )
            self.features = fed

    @property
    def type(self) -> str:
        """The seed's `model.type` (`xgboost`, ...), as `train_model(model_type=)` takes it."""
        return self.model_type

    @property
    def config(self) -> dict[str, Any]:
        """The seed's `model.config`: every parameter (hyperparameters, features, horizon, timeframe), as
        `train_model(model_type=..., config=...)` takes them to build the same definition again."""
        return jsonable(self.get_params())

    @property
    def hyperparams(self) -> dict[str, Any]:
        """The estimator's hyperparameters (and seed), without features/horizon/timeframe."""
        return {k: v for k, v in self.get_params().items() if k not in _COMMON or k == "seed"}

    @property
    def bar_ms(self) -> int:
        return TIMEFRAME_MS[self.timeframe]

    # -- fit -----------------------------------------------------------------------------------------
    def fit(
        self, X: pd.DataFrame | np.ndarray, y: Iterable[Any], meta: pd.DataFrame | None = None
    ) -> BaseModel:
        """Fit on the earlier rows of X and calibrate the confidence on its last slice (embargoed).

        Nothing outside X is touched, so a holdout kept apart stays unseen. `meta` (the dataset's
        symbol, time, close and volatility columns) gives the row times and lets the baselines and
        confidence use them; without it the rows are taken as consecutive bars.
        """
        self.check_params()
        horizon = int(self.horizon)
        names, X = self._fit_columns(X)
        ts = self._row_times(X, meta)
        values, target = validate_data(self, X, y, dtype="float64", y_numeric=not self.is_classifier)
        target = self._encode_target(target)
        if ts is None:
            ts = np.arange(len(target), dtype="int64") * self.bar_ms
        try:
            cut = calibration_split(ts, horizon, self.bar_ms, self.calibration_ratio)
        except BadInput as exc:
            raise EstimatorInputError(
                f"n_samples = {len(target)} rows cannot hold a fit part, an embargo of {horizon} bars and a "
                f"calibration slice ({exc.message})"
            ) from None
        self.feature_names_ = names or [f"x{i}" for i in range(values.shape[1])]
        # One thread: the service trains several models side by side, and OpenMP pools fighting over
        # shared cores run ~10x slower than one thread each.
        with _single_threaded():
            self._fit_estimator(values[cut.train], target[cut.train])
            raw_cal = self._raw(values[cut.holdout])
        cal_meta = meta[cut.holdout] if meta is not None else None
        calibration = self._calibrate(target[cut.holdout], raw_cal, cal_meta)
        self.calibration_ = jsonable(
            {"fit_rows": int(cut.train.sum()), "calibration_rows": int(cut.holdout.sum()),
             "labels": self._label_stats(target, meta), **calibration}
        )
        return self

    def _fit_columns(self, X: Any) -> tuple[list[str] | None, Any]:
        """The names X's columns stand for, and X restricted to the model's features when it is a frame."""
        features = list(self.features)
        if isinstance(X, pd.DataFrame) and all(isinstance(c, str) for c in X.columns):
            self.check_features(X.columns, features)
            return features, X[features]
        shape = getattr(X, "shape", None)
        if shape is None and not hasattr(X, "toarray"):
            shape = np.asarray(X).shape
        return (features if shape is not None and len(shape) == 2 and shape[1] == len(features) else None), X

    @staticmethod
    def _row_times(X: Any, meta: pd.DataFrame | None) -> np.ndarray | None:
        if meta is not None:
            return meta["ts_ms"].to_numpy(dtype="int64")
        if isinstance(X, pd.DataFrame) and isinstance(X.index, pd.DatetimeIndex):
            return index_ms(X.index)
        return None

    def history_days(self) -> float:
        """Days of candles before the window the model reads in `use_history` (0: none; builds load them)."""
        return 0.0

    def use_history(self, history: Mapping[str, pd.DataFrame], window: Mapping[str, pd.DataFrame],
                    before_ms: int) -> None:
        """Statistics from longer history (candles of `history` and `window` before `before_ms`)."""

    def _label_stats(self, y: np.ndarray, meta: pd.DataFrame | None) -> dict:
        """Statistics of the TRAIN labels the naive baselines use (never the holdout's)."""
        return {"mean": float(np.mean(y)), "majority": int(np.mean(y) >= 0.5)}

    def train_on(
        self,
        candles_by_symbol: Mapping[str, pd.DataFrame],
        data_source: str | None = None,
        *,
        walk_forward_folds: int = DEFAULT_FOLDS,
        history: Mapping[str, pd.DataFrame] | None = None,
    ) -> BaseModel:
        """The whole template: dataset -> chronological split with embargo -> walk-forward folds inside
        the train part (the definition) -> fit on the train part -> holdout metrics (the fitted model).

        `history`: candles from before the window (see `history_days`), read by `use_history` together
        with the window's candles up to the last train label, never the holdout's."""
        self.check_params()
        self.feed_scale_free()
        self.market_symbols_ = ()
        self.market_symbols_ = tuple(model_market_symbols(self, candles_by_symbol))
        ds = build_dataset(self, candles_by_symbol)
        split = chronological_split(ds.ts_ms, self.horizon, self.bar_ms, self.train_ratio)
        train, holdout = ds.subset(split.train), ds.subset(split.holdout)
        if self.history_days():
            last_label = int(train.ts_ms.max()) + int(self.horizon) * self.bar_ms  # the last train label bar
            self.use_history(history or {}, candles_by_symbol, last_label + 1)
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
            "features_given": list(self.features_given_ or self.features),
            "feature_substitutions": [dict(s) for s in self.feature_substitutions_],
            "market_symbols": list(self.market_symbols_),
        }
        metrics = evaluate_dataset(self, holdout, window=self.training_["window"])
        metrics["walk_forward"] = walk_forward(self, train, folds=walk_forward_folds)
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
        if timeframe is not None and timeframe != self.timeframe:
            timeframe_ms(timeframe)
            self.timeframe = timeframe
            if prediction_horizon is None:
                self.horizon = self.default_horizon(timeframe)
        if prediction_horizon is not None:
            self.horizon = int(prediction_horizon)
        self.check_params()
        self.feed_scale_free()
        bars = int(lookback_bars or days_back * bars_per_day(self.timeframe))
        backend = get_backend()
        warmup = required_warmup(list(self.features), self.timeframe)
        candles = backend.load_window(symbols, self.timeframe, bars + warmup)
        return self.train_on(candles, data_source=backend.data_source_of(candles))

    def backtest(self, symbols: Iterable[str], days_back: float = 7, **kwargs: Any) -> dict:
        """Metrics on the newest `days_back` days' holdout not seen in training (see ValidationPipeline)."""
        return ValidationPipeline(**kwargs).backtest_model(self, symbols=list(symbols), days_back=days_back)

    # -- predict -------------------------------------------------------------------------------------
    def _require_fitted(self) -> None:
        if not self.__sklearn_is_fitted__():
            raise NotTrained(f"{type(self).__name__} is not trained yet; call train(...) or fit(X, y) first")

    def check_features(self, columns: Iterable[str], expected: Iterable[str] | None = None) -> None:
        """Refuse features that differ from those the model was trained on (names, not order)."""
        if expected is None:
            expected = getattr(self, "feature_names_", None) or list(self.features)
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

    def _validated(self, X: Any) -> np.ndarray:
        """X checked as scikit-learn checks a matrix at predict time (shape, finite, feature names)."""
        if isinstance(X, pd.DataFrame) and all(isinstance(c, str) for c in X.columns):
            X = self._frame(X, self.feature_names_)
            if not hasattr(self, "feature_names_in_"):
                X = X.to_numpy(dtype="float64")
        return validate_data(self, X, reset=False, dtype="float64")

    def outputs(
        self, X: pd.DataFrame | np.ndarray, meta: pd.DataFrame | None = None
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """(predictions, stated confidences) for many rows: what validation checks against outcomes.

        Classifiers predict the class index (1 = `classes_[1]`, UP or accelerating for the kinds' labels).
        """
        self._require_fitted()
        values = self._frame(X, self.feature_names_).to_numpy("float64")
        with _single_threaded():
            raw = self._raw(values)
        return self._outputs(raw, meta)

    def _predict_matrix(self, X: Any) -> np.ndarray:
        self._require_fitted()
        values = self._validated(X)
        with _single_threaded():
            prediction = self._outputs(self._raw(values), None)[0]
        return self._decode(prediction)

    def _decode(self, prediction: np.ndarray) -> np.ndarray:
        return prediction

    def predict(
        self,
        X: pd.DataFrame | np.ndarray | None = None,
        *,
        symbol: str | None = None,
        current_features: pd.DataFrame | None = None,
    ) -> Any:
        """With X alone: an array of predictions (scikit-learn style). With `symbol` and/or
        `current_features` (feature columns, or raw OHLCV candles): the kind's answer for the last row.
        A FeatureManager frame of other columns (X or `current_features`) names its symbol's candles
        (`attrs`): the answer is for its last row's candle, from the model's own features."""
        if X is not None and symbol is None and current_features is None and not self._names_candles(X):
            return self._predict_matrix(X)
        self._require_fitted()
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
        named = frame.attrs.get("symbol")  # a FeatureManager frame says whose candles it holds
        if named and columns != set(self.feature_names_) and isinstance(frame.index, pd.DatetimeIndex):
            return self._answer_for_row_of(str(named), frame)
        self.check_features(frame.columns)
        candles = self._latest(symbol) if self.needs_context and symbol is not None else None
        return self.answer(frame.iloc[[-1]], candles)

    def answer(self, features_row: pd.DataFrame, candles: pd.DataFrame | None = None) -> Any:
        """The kind's answer for the last row of `features_row`; `candles` give the close and volatility."""
        self._require_fitted()
        row = self._frame(features_row.iloc[[-1]], self.feature_names_)
        context = None
        if candles is not None and not candles.empty:
            if isinstance(row.index, pd.DatetimeIndex):
                candles = candles.loc[: row.index[-1]]
            context = context_frame(candles.iloc[-(SCALE_WINDOW + 1):]).iloc[[-1]]
        return self.answer_values(row.to_numpy("float64")[0], context_values(context))

    def answer_values(self, values: np.ndarray, context: Mapping[str, float] | None = None) -> Any:
        """The kind's answer for one row of feature values in `feature_names_` order (DESIGN 4).

        The serving path: a 1-D float64 array and, for kinds whose answer is a price, that candle's
        `close` and `scale` (see `context_row`). No frames and no per-call library configuration, so one
        answer costs a fraction of a millisecond; `answer` and `predict` come here too.
        """
        if np.isnan(values).any():
            missing = [f for f, v in zip(self.feature_names_, values, strict=True) if v != v]
            raise BadInput(f"features of the last row are missing (NaN): {missing}")
        if self.needs_context and context is None:
            raise BadInput(f"a {self.kind} answer needs the latest candles: pass symbol= or raw candles")
        meta = None if context is None else {k: np.array([v]) for k, v in context.items()}
        prediction, confidence = self._outputs(self._raw(values.reshape(1, -1)), meta)  # type: ignore[arg-type]
        conf = None if confidence is None else float(confidence[0])
        return self._answer(float(prediction[0]), conf, context)  # type: ignore[arg-type]

    def answer_many(self, values: np.ndarray, contexts: Sequence[Mapping[str, float] | None]) -> list[Any]:
        """`answer_values` for each row of `values` (one symbol each), the same answers; kinds whose rows are
        independent (trees) run the estimator once for all rows."""
        if not self.rows_independent or len(values) < 2 or np.isnan(values).any():
            return [self.answer_values(v, c) for v, c in zip(values, contexts, strict=True)]
        raw = self._raw(values)
        answers = []
        for i, context in enumerate(contexts):
            prediction, confidence = self._outputs(raw[i : i + 1], None)
            conf = None if confidence is None else float(confidence[0])
            answers.append(self._answer(float(prediction[0]), conf, context))  # type: ignore[arg-type]
        return answers

    def _answer_from_candles(self, candles: pd.DataFrame) -> Any:
        row, context = latest_rows(self, candles, self._market_like(candles))
        values = self._frame(row, self.feature_names_).to_numpy("float64")[0]
        return self.answer_values(values, context_values(context))

    def _names_candles(self, X: Any) -> bool:
        """A FeatureManager frame of other columns than the model's (`predict(features.iloc[-1:])`):
        no feature matrix for scikit-learn, but the symbol's candles, which the model answers for."""
        return (isinstance(X, pd.DataFrame) and bool(X.attrs.get("symbol")) and not X.empty
                and set(map(str, X.columns)) != set(getattr(self, "feature_names_", ())))

    def _answer_for_row_of(self, symbol: str, frame: pd.DataFrame) -> Any:
        """The answer for the candle that `frame`'s last row stands for (a FeatureManager frame of other
        columns: its `attrs` name the symbol), from the stored candles up to it and the model's own
        features, as `predict(symbol=...)` computes them."""
        warmup = max(required_warmup(self.feature_names_, self.timeframe), SCALE_WINDOW) + 2
        candles = get_backend().candles_for_features(symbol, frame.iloc[[-1]], self.timeframe, warmup)
        return self._answer_from_candles(candles)

    def _market_like(self, candles: pd.DataFrame) -> dict[str, pd.DataFrame] | None:
        """The market symbols' stored candles over the span of `candles` (cross-asset models only)."""
        if not self.market_symbols_ or candles.empty or not isinstance(candles.index, pd.DatetimeIndex):
            return None
        stamps = index_ms(candles.index)
        return get_backend().market_candles(list(self.market_symbols_), self.timeframe, int(stamps[0]),
                                            int(stamps[-1]))

    def _latest(self, symbol: str) -> pd.DataFrame:
        bars = max(required_warmup(self.feature_names_, self.timeframe), SCALE_WINDOW) + 2
        return get_backend().latest_candles(symbol, self.timeframe, bars)

    # -- save / load ---------------------------------------------------------------------------------
    def save_artifacts(self, directory: Path) -> dict:
        """Write `artifact_file` into `directory`; return the config that rebuilds the model with it."""
        self._require_fitted()
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        state = self._save_estimator(directory / self.artifact_file)
        names_in = getattr(self, "feature_names_in_", None)
        config = {
            "kind": self.kind, "model_type": self.model_type, "artifact_file": self.artifact_file,
            "description": self.description, "params": self.get_params(), "hyperparams": self.hyperparams,
            "features": self.feature_names_, "horizon": self.horizon, "timeframe": self.timeframe,
            "feature_names_in": None if names_in is None else [str(n) for n in names_in],
            "calibration": self.calibration_, "training": dict(self.training_),
            "performance": dict(self.performance_), "estimator": state,
            "market_symbols": list(self.market_symbols_), **self._extra_config(),
        }
        config = jsonable(config)
        json.dumps(config, allow_nan=False)  # fail here, not when STORE writes config.json
        return config

    def _extra_config(self) -> dict:
        return {}

    def _load_extra(self, config: dict) -> None:
        """Fitted attributes a family keeps in the config (classifiers: `classes_`)."""

    @classmethod
    def load_artifacts(cls, directory: Path, config: dict) -> BaseModel:
        """Rebuild a model from `save_artifacts` output (safe formats only; no pickle)."""
        klass: type[BaseModel] = cls
        if cls.__dict__.get("kind") != config.get("kind"):
            found = BaseModel._by_kind.get(str(config.get("kind")))
            if found is None:
                raise BadInput(f"unknown model kind {config.get('kind')!r} in config.json")
            klass = found
        model = klass(**config["params"])
        model.feature_names_ = list(config["features"])
        model.n_features_in_ = len(model.feature_names_)
        names_in = config.get("feature_names_in", model.feature_names_)  # older configs: fitted on frames
        if names_in is not None:
            model.feature_names_in_ = np.asarray(names_in, dtype=object)
        model.calibration_ = dict(config.get("calibration") or {})
        model.training_ = dict(config.get("training") or {})
        model.performance_ = dict(config.get("performance") or {})
        model.market_symbols_ = tuple(config.get("market_symbols") or ())
        model._load_extra(config)
        model._load_estimator(Path(directory) / klass.artifact_file, dict(config.get("estimator") or {}))
        return model


def context_values(context: pd.DataFrame | None) -> dict[str, float] | None:
    """The last row of a `context_frame` as plain floats (None stays None)."""
    if context is None or context.empty:
        return None
    last = context.iloc[-1]
    return {"close": float(last["close"]), "scale": float(last["scale"])}


def _iso(ms: int) -> str:
    return pd.Timestamp(ms, unit="ms", tz="UTC").isoformat()


def _span(ms: int) -> str:
    days = ms / 86_400_000
    return f"{days:g}d" if days == int(days) else f"{ms / 3_600_000:.1f}h"


def _seed_aliases(metrics: dict) -> dict:
    """The seed's metadata names (backtest_accuracy, ...) beside the plain ones."""
    names = ("accuracy", "precision", "recall", "f1", "window")
    return {f"backtest_{k}": metrics[k] for k in names if k in metrics}
