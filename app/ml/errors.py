"""Errors of the estimators that are both the project's (a clear 422 for callers) and scikit-learn's kind
(`ValueError`, `NotFittedError`), so pipelines, searches and sklearn's own checks see what they expect."""

from __future__ import annotations

from sklearn.exceptions import NotFittedError

from app.core.errors import BadInput


class EstimatorInputError(BadInput, ValueError):
    """Data an estimator cannot be fitted or asked on (too few rows, one class, wrong shape)."""


class NotTrained(BadInput, NotFittedError):
    """The model has not been fitted yet."""
