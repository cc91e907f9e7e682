import numpy as np
import pytest
from sklearn import metrics as skm

from app.ml.metrics import classification, regression


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_classification_scores_equal_scikit_learns(seed: int) -> None:
    rng = np.random.default_rng(seed)
    y = rng.random(500) < 0.45
    p1 = np.round(np.clip(0.5 + 0.2 * (y - 0.5) + rng.normal(0, 0.2, 500), 0, 1), 2)  # ties on purpose
    pred = p1 >= 0.5

    got = classification(y, pred, p1)

    assert got["accuracy"] == pytest.approx(skm.accuracy_score(y, pred))
    assert got["precision"] == pytest.approx(skm.precision_score(y, pred, zero_division=0))
    assert got["recall"] == pytest.approx(skm.recall_score(y, pred, zero_division=0))
    assert got["f1"] == pytest.approx(skm.f1_score(y, pred, zero_division=0))
    assert got["roc_auc"] == pytest.approx(skm.roc_auc_score(y, p1))


def test_a_model_that_never_says_up_has_zero_precision_recall_f1_and_auc_needs_both_classes() -> None:
    y = np.array([1, 0, 1, 0])
    assert classification(y, np.zeros(4), np.full(4, 0.3))["f1"] == 0.0
    assert classification(np.ones(4), np.ones(4), np.full(4, 0.6))["roc_auc"] is None


def test_regression_scores_equal_scikit_learns() -> None:
    rng = np.random.default_rng(3)
    y, pred = rng.normal(size=300), rng.normal(size=300)

    got = regression(y, pred)

    assert got["rmse"] == pytest.approx(np.sqrt(skm.mean_squared_error(y, pred)))
    assert got["mae"] == pytest.approx(skm.mean_absolute_error(y, pred))
    assert got["r2"] == pytest.approx(skm.r2_score(y, pred))
