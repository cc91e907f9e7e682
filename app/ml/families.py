"""What classifiers and regressors share: calibrated class probabilities, or band confidences."""

from __future__ import annotations

from abc import abstractmethod
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from app.ml.base import BaseModel
from app.ml.calibration import platt_apply, platt_fit


class ClassifierModel(BaseModel):
    """Binary kinds. Confidence = Platt-calibrated probability of the answered class.

    The calibrator maps the estimator's raw score to P(class 1) and is fitted on the calibration slice at
    the end of the train part (after an embargo), never on the fit rows or the holdout. The answered class
    is the one with probability >= 0.5, so a confidence is always in [0.5, 1]; validation checks it with a
    reliability table (stated vs observed frequency per bin) on the holdout.
    """

    is_classifier = True
    labels: ClassVar[tuple[str, str]]  # answer for class 0, class 1
    answer_key: ClassVar[str]
    baseline_names = ("majority", "last_move")

    def _calibrate(self, y: np.ndarray, raw: np.ndarray, meta: pd.DataFrame | None) -> dict:
        return {"method": "platt", **platt_fit(raw, y)}

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        """Calibrated [P(class 0), P(class 1)] per row."""
        self._require_fitted()
        raw = self._raw(self._frame(X, self.feature_names_).to_numpy("float64"))
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


class RegressorModel(BaseModel):
    """Continuous kinds; `hits` says whether the outcome fell inside the band the confidence is about."""

    band: ClassVar[str] = ""

    @abstractmethod
    def _confidence(self, pred: np.ndarray, meta: pd.DataFrame | None) -> np.ndarray | None: ...

    def hits(self, y: np.ndarray, pred: np.ndarray) -> np.ndarray | None:
        return None

    def _outputs(self, raw: np.ndarray, meta: pd.DataFrame | None) -> tuple[np.ndarray, np.ndarray | None]:
        return raw, self._confidence(raw, meta)

    def _answer(self, prediction: float, confidence: float | None, context: pd.Series | None) -> Any:
        raise NotImplementedError
