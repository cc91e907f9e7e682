"""Every kind is a scikit-learn estimator: sklearn's own conformance suite, clone, Pipeline and a search."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.base import clone, is_classifier, is_regressor
from sklearn.model_selection import GridSearchCV, KFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

from app.ml import DirectionPredictor, MomentumClassifier, PricePredictor, RiskScorer, VolatilityRegressor

# Small configurations on hourly bars (horizon 1 bar): sklearn's checks fit on 10-200 rows, and a
# 60-bar embargo before the calibration slice would leave nothing to fit.
ESTIMATORS = [
    DirectionPredictor(n_estimators=10, max_depth=3, horizon=1),
    RiskScorer(n_estimators=10, max_depth=5, horizon=1),
    PricePredictor(hidden_layers=(16,), epochs=100, learning_rate=0.01, timeframe="1h", horizon=1),
    MomentumClassifier(n_components=50, horizon=1),
    VolatilityRegressor(max_iter=30, min_samples_leaf=5, timeframe="1h", horizon=1),
]

_SORTED_LABELS = (
    "the calibration slice is the last 20% of the rows (rows are taken in time order); this check "
    "passes labels sorted by class, so that slice holds a single class and no calibrator can be fitted"
)


def expected_failed_checks(estimator) -> dict[str, str]:
    if not is_classifier(estimator):
        return {}
    return {
        "check_estimators_nan_inf": _SORTED_LABELS,
        "check_classifier_data_not_an_array": _SORTED_LABELS,
        "check_positive_only_tag_during_fit": _SORTED_LABELS,
    }


@parametrize_with_checks(ESTIMATORS, expected_failed_checks=expected_failed_checks)
def test_scikit_learn_conformance(estimator, check) -> None:
    check(estimator)


def _matrix(n: int = 400, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3))
    return X, X[:, 0] + 0.1 * rng.normal(size=n)


@pytest.mark.parametrize("estimator", ESTIMATORS, ids=lambda e: type(e).__name__)
def test_clone_keeps_every_parameter_and_no_fitted_state(estimator) -> None:
    X, y = _matrix()
    target = (y > 0).astype(int) if is_classifier(estimator) else np.abs(y) + 0.01
    fitted = clone(estimator).fit(X, target)
    copy = clone(fitted.set_params(seed=7))
    assert copy.get_params() == fitted.get_params() and copy.seed == 7
    assert not hasattr(copy, "estimator_") and hasattr(fitted, "estimator_")


def test_a_pipeline_and_a_grid_search_can_hold_a_kind() -> None:
    X, y = _matrix(600)
    labels = (y > 0).astype(int)
    pipe = make_pipeline(StandardScaler(), DirectionPredictor(n_estimators=10, horizon=1))
    search = GridSearchCV(pipe, {"directionpredictor__max_depth": [1, 3]}, cv=KFold(3)).fit(X, labels)
    assert search.best_params_["directionpredictor__max_depth"] in (1, 3)
    assert search.best_score_ > 0.8  # the label is the sign of the first column: learnable
    regressor = GridSearchCV(RiskScorer(n_estimators=10, horizon=1), {"max_depth": [2, 4]}, cv=KFold(3))
    assert is_regressor(regressor.fit(X, y - y.min() + 0.01).best_estimator_)
    assert regressor.best_score_ > 0.5


def test_a_classifier_predicts_its_own_labels() -> None:
    X, y = _matrix()
    labels = np.where(y > 0, "up", "down")
    model = DirectionPredictor(n_estimators=10, horizon=1).fit(X, labels)
    assert set(model.predict(X)) <= {"up", "down"} and list(model.classes_) == ["down", "up"]
    assert model.predict_proba(X).shape == (len(X), 2)
