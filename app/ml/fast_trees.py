"""One row through a fitted tree ensemble in a few vectorised steps, with the library's exact arithmetic.

Serving asks for one row at a time, where scikit-learn's forest and boosting `predict` spend most of their
time on per-call checks and per-tree dispatch (a random forest of 100 trees: ~3 ms for one row). Here the
trees are flattened once into arrays (leaves point to themselves), so a few rows walk every tree at
once, one array step per level, and the tree outputs are added in the library's order (sequentially, from
the same start), so the answer is bit for bit the library's (tests compare them).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

SERVING_ROWS = 256  # up to this many rows (a batch of symbols) go through the flattened trees


class FlatTrees:
    """Trees as arrays: feature, threshold, children and value per node; roots are the first nodes."""

    def __init__(
        self,
        nodes: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, int]],
        start: float,
        float32: bool,
    ) -> None:
        """`nodes`: per tree (is_leaf, feature, threshold, left, right, value, depth); `start`: where the
        sum starts; `float32`: compare float32 inputs, as scikit-learn's decision trees do."""
        offset, parts, roots, depth = 0, [], [], 0
        for is_leaf, feature, threshold, left, right, value, tree_depth in nodes:
            own = np.arange(len(feature)) + offset
            parts.append((
                np.where(is_leaf, 0, feature), threshold, np.where(is_leaf, own, left + offset),
                np.where(is_leaf, own, right + offset), value,
            ))
            roots.append(offset)
            offset += len(feature)
            depth = max(depth, int(tree_depth))
        self.feature, self.threshold, self.left, self.right, self.value = (
            np.concatenate([p[i] for p in parts]) for i in range(5)
        )
        self.feature = self.feature.astype(np.intp)
        self.left, self.right = self.left.astype(np.intp), self.right.astype(np.intp)
        self.roots = np.asarray(roots, dtype=np.intp)
        self.depth = depth
        self.start = np.array([start], dtype="float64")
        self.float32 = float32

    def totals(self, X: np.ndarray) -> np.ndarray:
        """Per row of X: start + tree 1 + tree 2 + ..., added one at a time in that order (cumsum is
        sequential), as the libraries add them; each row walks every tree at once, one step per level."""
        if self.float32:
            X = X.astype(np.float32).astype(np.float64)
        rows = np.arange(len(X))[:, None]
        node = np.broadcast_to(self.roots, (len(X), len(self.roots)))
        feature, threshold, left, right = self.feature, self.threshold, self.left, self.right
        for _ in range(self.depth):
            node = np.where(X[rows, feature[node]] <= threshold[node], left[node], right[node])
        sums = np.concatenate((np.broadcast_to(self.start, (len(X), 1)), self.value[node]), axis=1)
        return np.cumsum(sums, axis=1)[:, -1]


def forest(estimator: Any) -> FlatTrees:
    """A fitted RandomForestRegressor (single output): its prediction is total(x) / n_estimators."""
    nodes = []
    for tree in estimator.estimators_:
        t = tree.tree_
        is_leaf = t.children_left == -1
        nodes.append((is_leaf, t.feature, t.threshold, t.children_left, t.children_right, t.value[:, 0, 0],
                      t.max_depth))
    return FlatTrees(nodes, 0.0, float32=True)


def boosting(estimator: Any) -> FlatTrees:
    """A fitted HistGradientBoostingRegressor without categorical features: raw = total(x)."""
    nodes = []
    for (predictor,) in estimator._predictors:  # one tree per iteration for a regressor
        n = predictor.nodes
        if n["is_categorical"].any():
            raise ValueError("categorical splits are not flattened; use the estimator's predict")
        nodes.append((n["is_leaf"].astype(bool), n["feature_idx"], n["num_threshold"], n["left"], n["right"],
                      n["value"], int(n["depth"].max())))
    return FlatTrees(nodes, float(np.asarray(estimator._baseline_prediction).reshape(-1)[0]), float32=False)
