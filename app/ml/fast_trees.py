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
        sum_dtype: Any = np.float64,
    ) -> None:
        """`nodes`: per tree (is_leaf, feature, threshold, left, right, value, depth); `start`: where the
        sum starts; `float32`: compare float32 inputs, as scikit-learn's decision trees and XGBoost do;
        `sum_dtype`: the type the library adds tree outputs in (XGBoost: float32)."""
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
        self.sum_dtype = np.dtype(sum_dtype)
        self.value = self.value.astype(self.sum_dtype)
        self.start = np.array([start], dtype=self.sum_dtype)
        self.float32 = float32

    def totals(self, X: np.ndarray) -> np.ndarray:
        """Per row of X: start + tree 1 + tree 2 + ..., added one at a time in that order (cumsum is
        sequential), as the libraries add them; each row walks every tree at once, one step per level."""
        return self.sums(self.leaves(X), self.start)

    def leaves(self, X: np.ndarray) -> np.ndarray:
        """Per row of X, the value of the leaf it reaches in each tree (rows x trees)."""
        if self.float32:
            X = X.astype(np.float32).astype(np.float64)
        rows = np.arange(len(X))[:, None]
        node = np.broadcast_to(self.roots, (len(X), len(self.roots)))
        feature, threshold, left, right = self.feature, self.threshold, self.left, self.right
        for _ in range(self.depth):
            node = np.where(X[rows, feature[node]] <= threshold[node], left[node], right[node])
        return self.value[node]

    def sums(self, leaves: np.ndarray, start: np.ndarray) -> np.ndarray:
        both = np.concatenate((np.broadcast_to(start, (len(leaves), 1)), leaves), axis=1)
        return np.cumsum(both, axis=1, dtype=self.sum_dtype)[:, -1]


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


def xgboost_binary(booster: Any, probe_rows: int = 4000, seed: int = 0) -> FlatTrees | None:
    """A binary:logistic XGBoost booster's margin, flattened, or None when it cannot be reproduced exactly.

    XGBoost compares float32 inputs with `x < split` (here `x <= the float32 just below split`, the same
    test for float32 values), starts from the base score in margin space (the logit of `base_score`)
    and adds the trees' leaves in float32, in tree order. Those are XGBoost's internals,
    not its API, so the flattened trees are checked against `inplace_predict` on rows made of the split
    values themselves and either side of them (every comparison's edge) and on random rows; any bit of
    difference, a categorical split, more than one tree per round or another objective gives None, and the
    caller keeps using the booster.
    """
    import json

    model = json.loads(booster.save_raw("json"))
    learner = model["learner"]
    if learner["objective"]["name"] != "binary:logistic":
        return None
    params = learner["learner_model_param"]
    gbm = learner["gradient_booster"]
    if gbm.get("name") != "gbtree" or int(params.get("num_target", "1")) != 1 or int(params["num_class"]) > 1:
        return None
    trees = gbm["model"]["trees"]
    if int(gbm["model"]["gbtree_model_param"].get("num_parallel_tree", "1")) != 1 or not trees:
        return None
    base = np.float32(json.loads(params["base_score"])[0] if params["base_score"].startswith("[")
                      else float(params["base_score"]))
    start = -np.log(np.float32(1.0) / base - np.float32(1.0))  # XGBoost's ProbToMargin, in float32
    nodes, splits = [], [[] for _ in range(int(params["num_feature"]))]
    for tree in trees:
        if any(tree.get("split_type", [])) or tree.get("categories"):
            return None
        left, right = np.asarray(tree["left_children"]), np.asarray(tree["right_children"])
        feature = np.asarray(tree["split_indices"])
        condition = np.asarray(tree["split_conditions"], dtype=np.float32)  # a leaf's value at leaves
        is_leaf = left == -1
        depth = np.zeros(len(left), dtype=int)
        for i in range(len(left)):  # parents come before children in XGBoost's node order
            if not is_leaf[i]:
                depth[left[i]] = depth[right[i]] = depth[i] + 1
        below = np.nextafter(condition, np.float32(-np.inf)).astype(np.float64)
        nodes.append((is_leaf, feature, below, left, right, condition, int(depth.max())))
        for f, c in zip(feature[~is_leaf], condition[~is_leaf], strict=True):
            splits[f].append(c)
    flat = FlatTrees(nodes, float(start), float32=True, sum_dtype=np.float32)
    rng = np.random.default_rng(seed)
    columns = []
    for values in splits:
        edges = np.asarray(values or [0.0], dtype=np.float32)
        edges = np.concatenate([edges, np.nextafter(edges, np.float32(np.inf)),
                                np.nextafter(edges, np.float32(-np.inf))])
        columns.append(rng.choice(edges, size=probe_rows).astype(np.float64))
    scales = rng.choice([1e-3, 1.0, 1e3], (probe_rows, 1))
    probe = np.vstack([np.column_stack(columns), rng.normal(size=(probe_rows, len(splits))) * scales])
    expected = np.asarray(booster.inplace_predict(probe, predict_type="margin"), dtype=np.float32)
    # The base score is stored (and printed in the JSON) rounded to fewer digits than its float32, so the
    # exact start is the float32 within a few units in the last place of the logit that reproduces the
    # booster on the whole probe; none, and the booster keeps answering.
    leaves = np.concatenate([flat.leaves(probe[i : i + SERVING_ROWS])
                             for i in range(0, len(probe), SERVING_ROWS)])
    for step in sorted(range(-16, 17), key=abs):
        candidate = np.array([start], dtype=np.float32)
        for _ in range(abs(step)):
            candidate = np.nextafter(candidate, np.float32(np.inf if step > 0 else -np.inf))
        if np.array_equal(flat.sums(leaves, candidate).view(np.int32), expected.view(np.int32)):
            flat.start = candidate
            return flat
    return None
