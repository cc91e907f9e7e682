"""What classifiers and regressors share: calibrated class probabilities, or band confidences."""

from __future__ import annotations

from abc import abstractmethod
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from sklearn.base import ClassifierMixin, RegressorMixin
from sklearn.utils.multiclass import check_classification_targets, type_of_target

from app.ml.base import BaseModel
from app.ml.calibration import platt_apply, platt_fit
from app.ml.errors import EstimatorInputError
from app.ml.splits import calibration_split


class ClassifierModel(ClassifierMixin, BaseModel):
    """Binary kinds. Confidence = Platt-calibrated probability of the answered class.

    The calibrator maps the estimator's raw score to P(class 1) and is fitted on the calibration slice at
    the end of the train part (after an embargo), never on the fit rows or the holdout. The answered class
    is the one with probability >= 0.5, so a confidence is always in [0.5, 1]; validation checks it with a
    reliability table (stated vs observed frequency per bin) on the holdout.
    Labels may be any two values (`classes_`, sorted); the kinds' own targets are 0.0 / 1.0, class 1
    being UP or accelerating.
    """

    is_classifier = True
    labels: ClassVar[tuple[str, str]]  # answer for class 0, class 1
    answer_key: ClassVar[str]
    baseline_names = ("majority", "last_move", "base_rate")

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_class = False
        return tags

    def _encode_target(self, y: np.ndarray) -> np.ndarray:
        check_classification_targets(y)
        classes = np.unique(y)
        if len(classes) > 2:
            raise EstimatorInputError(
                f"Only binary classification is supported. The type of the target is {type_of_target(y)}: "
                f"{type(self).__name__} needs y with exactly 2 classes, got {len(classes)}"
            )
        if len(classes) < 2:
            raise EstimatorInputError(
                f"{type(self).__name__} needs y with 2 classes, got 1 class ({classes.tolist()}): "
                "nothing to learn"
            )
        self.classes_ = classes
        return (np.asarray(y) == classes[1]).astype("float64")

    def _decode(self, prediction: np.ndarray) -> np.ndarray:
        return self.classes_[np.asarray(prediction, dtype="int64")]

    def _calibrate(self, y: np.ndarray, raw: np.ndarray, meta: pd.DataFrame | None) -> dict:
        if y.min() == y.max():
            raise EstimatorInputError(
                "the calibration slice holds one class only; train on a longer window so both occur"
            )
        return {"method": "platt", **platt_fit(raw, y)}

    def predict_proba(self, X: pd.DataFrame | np.ndarray) -> np.ndarray:
        """Calibrated [P(classes_[0]), P(classes_[1])] per row."""
        self._require_fitted()
        raw = self._raw(self._validated(X))
        p1 = platt_apply(raw, self.calibration_)
        return np.column_stack([1.0 - p1, p1])

    def _outputs(self, raw: np.ndarray, meta: pd.DataFrame | None) -> tuple[np.ndarray, np.ndarray]:
        p1 = platt_apply(raw, self.calibration_)
        pred = (p1 >= 0.5).astype("int64")
        return pred, np.where(pred == 1, p1, 1.0 - p1)

    def hits(self, y: np.ndarray, pred: np.ndarray) -> np.ndarray:
        """Whether the answered class happened: the event a classifier's confidence is about."""
        return np.asarray(pred) == np.asarray(y)

    def _answer(self, prediction: float, confidence: float | None, context: pd.Series | None) -> dict:
        return {self.answer_key: self.labels[int(prediction)], "confidence": confidence}

    def _extra_config(self) -> dict:
        return {"classes": self.classes_.tolist()}

    def _load_extra(self, config: dict) -> None:
        self.classes_ = np.asarray(config.get("classes", [0.0, 1.0]))


class RegressorModel(RegressorMixin, BaseModel):
    """Continuous kinds; `hits` says whether the outcome fell inside the band the confidence is about."""

    band: ClassVar[str] = ""
    fit_scratch: ClassVar[tuple[str, ...]] = ()  # attributes a kind keeps only while it fits

    def fit(self, X: Any, y: Any, meta: pd.DataFrame | None = None) -> RegressorModel:
        """BaseModel.fit; the row times are kept meanwhile (`_fit_times`) so a kind's out-of-fold folds can
        be cut by time, and dropped afterwards with the kind's `fit_scratch`."""
        ts = self._row_times(X, meta)
        self._fit_times = None if ts is None else np.asarray(ts, dtype="int64")
        try:
            return super().fit(X, y, meta)  # type: ignore[return-value]
        finally:
            for name in ("_fit_times", *self.fit_scratch):
                self.__dict__.pop(name, None)

    def _fit_times_of(self, n_fit: int) -> np.ndarray | None:
        """The times of the fit rows (the rows BaseModel.fit hands to _fit_estimator), when the kind
        kept them in `_fit_times` (price, volatility: their out-of-fold folds need the rows' times)."""
        ts = getattr(self, "_fit_times", None)
        if ts is None:
            return None
        cut = calibration_split(ts, int(self.horizon), self.bar_ms, self.calibration_ratio)
        return ts[cut.train] if int(cut.train.sum()) == n_fit else None

    @abstractmethod
    def _confidence(self, pred: np.ndarray, meta: pd.DataFrame | None) -> np.ndarray | None: ...

    def hits(self, y: np.ndarray, pred: np.ndarray) -> np.ndarray | None:
        return None

    def _outputs(self, raw: np.ndarray, meta: pd.DataFrame | None) -> tuple[np.ndarray, np.ndarray | None]:
        return raw, self._confidence(raw, meta)

    def _answer(self, prediction: float, confidence: float | None, context: pd.Series | None) -> Any:
        raise NotImplementedError
