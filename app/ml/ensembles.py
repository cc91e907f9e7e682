"""Ensembles of models of one kind: weighted average, (weighted) majority vote, and stacking.

Every member is reduced to one number per row, its *signal*: the probability of the positive class for
classifiers (UP, accelerating) and the predicted value for regressors (risk, price, volatility). The
ensemble blends signals, so the same arithmetic serves a backtest (vectorised over a holdout) and a live
answer (built from the members' answers). Stacking fits its meta-model on holdout rows only: rows that come
after the last training row of every member, which `fit_stacking` checks.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from scipy.optimize import nnls

from app.core.errors import BadInput, Unavailable
from app.ml.backend import get_backend

METHODS = ("weighted_avg", "voting", "stacking")
CLASS_LABELS: dict[str, tuple[str, str]] = {
    "direction": ("DOWN", "UP"),
    "momentum": ("decelerating", "accelerating"),
}
LABEL_KEY = {"direction": "direction", "momentum": "state"}
VALUE_KEY = {"price": "predicted_price", "volatility": "predicted_volatility"}
CLASSIFIER_KINDS = frozenset(CLASS_LABELS)
_EPS = 1e-6


def signal_from_answer(kind: str, answer: Any) -> float:
    """A member's answer (DESIGN 4 shape) as the number the ensemble blends."""
    if kind in CLASS_LABELS:
        p = float(answer["confidence"])
        return p if answer[LABEL_KEY[kind]] == CLASS_LABELS[kind][1] else 1.0 - p
    if kind == "risk":
        return float(answer if not isinstance(answer, dict) else answer["risk"])
    return float(answer[VALUE_KEY[kind]])


def answer_from_signal(kind: str, signal: float, confidence: float | None) -> Any:
    """The blended signal in the kind's answer shape (classifier confidence = P of the answered class)."""
    if kind in CLASS_LABELS:
        up = signal >= 0.5
        return {
            LABEL_KEY[kind]: CLASS_LABELS[kind][int(up)],
            "confidence": float(signal if up else 1 - signal),
        }
    if kind == "risk":
        return int(min(100, max(0, round(signal))))
    return {VALUE_KEY[kind]: float(signal), "confidence": None if confidence is None else float(confidence)}


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, _EPS, 1 - _EPS)
    return np.log(p / (1 - p))


class EnsemblePredictor:
    """A blend of fitted models of one kind. `models` are model objects, or stored models' names (the
    seed's `models=['model_001', ...]`, loaded and verified through the store); `names` label them."""

    def __init__(
        self,
        models: Sequence[Any],
        weights: Sequence[float] | None = None,
        method: str = "weighted_avg",
        *,
        kind: str | None = None,
        names: Sequence[str] | None = None,
        meta: dict[str, Any] | None = None,
    ) -> None:
        if isinstance(models, str) or len(models) < 2:
            raise BadInput("an ensemble needs at least 2 member models")
        if any(isinstance(m, str) for m in models):
            if not all(isinstance(m, str) for m in models):
                raise BadInput("models: give all members as names, or all as fitted models")
            names = list(models) if names is None else names
            models = [get_backend().load_model(m) for m in models]
        if method not in METHODS:
            raise BadInput(f"unknown method {method!r}; use one of {', '.join(METHODS)}")
        kinds = {getattr(m, "kind", kind) for m in models}
        if kind is not None:
            kinds.add(kind)
        if len(kinds) != 1 or None in kinds:
            raise BadInput(f"ensemble members must all be of one kind, got {sorted(map(str, kinds))}")
        self.kind: str = kinds.pop()
        self.models = list(models)
        self.names = (
            list(names) if names is not None else [str(getattr(m, "name_", i)) for i, m in enumerate(models)]
        )
        if len(self.names) != len(self.models):
            raise BadInput("names must have one entry per member model")
        w = np.ones(len(models)) if weights is None else np.asarray(weights, dtype="float64")
        if w.shape != (len(models),) or not np.isfinite(w).all() or (w < 0).any() or w.sum() <= 0:
            raise BadInput(
                f"weights must be {len(models)} non-negative numbers with a positive sum, got {weights}"
            )
        self.weights = w / w.sum()
        self.method = method
        if method == "voting" and not self.is_classifier:
            raise BadInput(
                f"voting needs classifiers (direction, momentum); {self.kind} is a regression, "
                "use weighted_avg or stacking"
            )
        self.meta = meta

    @property
    def is_classifier(self) -> bool:
        return self.kind in CLASSIFIER_KINDS

    # ---- blending -------------------------------------------------------------------------------
    def combine(self, signals: np.ndarray) -> np.ndarray:
        """Blend member signals (rows x members) into one signal per row."""
        s = np.atleast_2d(np.asarray(signals, dtype="float64"))
        if s.shape[1] != len(self.models):
            raise BadInput(f"expected {len(self.models)} member signals per row, got {s.shape[1]}")
        if self.method == "weighted_avg":
            return s @ self.weights
        if self.method == "voting":
            return self._vote(s)
        return self._stack(s)

    def _vote(self, s: np.ndarray) -> np.ndarray:
        """P(positive) of the majority: the voters' mean probability, on the side most weight voted for."""
        votes_up = (s >= 0.5).astype("float64") @ self.weights
        mean_p = s @ self.weights
        out = np.empty(len(s))
        for i, (share, p) in enumerate(zip(votes_up, mean_p, strict=True)):
            if math.isclose(share, 0.5):
                out[i] = p
                continue
            side = s[i] >= 0.5 if share > 0.5 else s[i] < 0.5
            w = self.weights * side
            out[i] = float((s[i] * w).sum() / w.sum())
        return out

    def _stack(self, s: np.ndarray) -> np.ndarray:
        if self.meta is None:
            raise Unavailable("this stacking ensemble has no meta-model yet: run its backtest first "
                              "(POST /ensembles/{id}/backtest fits it on the members' holdout)")
        if self.meta["type"] == "logistic":
            z = _logit(s) @ np.asarray(self.meta["coef"]) + float(self.meta["intercept"])
            return 1.0 / (1.0 + np.exp(-z))
        return s @ np.asarray(self.meta["weights"])

    def member_signals(self, X: Any) -> np.ndarray:
        """Each member's signal on the rows of X (features in each member's own order)."""
        cols = []
        for model in self.models:
            frame = X[list(model.feature_names_)] if hasattr(model, "feature_names_") else X
            if self.is_classifier:
                cols.append(np.asarray(model.predict_proba(frame), dtype="float64")[:, 1])
            else:
                cols.append(np.asarray(model.predict(frame), dtype="float64").reshape(-1))
        return np.column_stack(cols)

    def predict(self, X: Any = None, *, symbol: str | None = None, df: Any = None) -> Any:
        """With X alone: the blended signal per row (P(positive class) for classifiers, the value for
        regressors). With `symbol` and/or `df` (the seed's form): the kind's answer (DESIGN 4), blended
        from each member's `predict(symbol=symbol, current_features=df)` for the newest row."""
        if symbol is None and df is None:
            if X is None:
                raise BadInput("pass symbol='BTC-USDT' and/or df=<features or candles>, or a matrix X")
            return self.combine(self.member_signals(X))
        return self.answer(self.member_answers(symbol=symbol, df=df if df is not None else X))

    def member_answers(self, *, symbol: str | None = None, df: Any = None) -> list[Any]:
        """Each member's own answer for the newest row (features it computes itself when `df` names a
        symbol's candle but holds other columns)."""
        return [m.predict(symbol=symbol, current_features=df) for m in self.models]

    def answer(self, member_answers: Sequence[Any]) -> Any:
        """The blended answer from the members' answers to one request."""
        signals = np.array([[signal_from_answer(self.kind, a) for a in member_answers]])
        blended = float(self.combine(signals)[0])
        confidence = None
        if not self.is_classifier:
            confs = [a.get("confidence") if isinstance(a, dict) else None for a in member_answers]
            if all(c is not None for c in confs):
                confidence = float(np.asarray(confs, dtype="float64") @ self.weights)
        return answer_from_signal(self.kind, blended, confidence)

    # ---- stacking ---------------------------------------------------------------------------------
    def check_after_training(self, row_times_ms: np.ndarray) -> None:
        """Refuse rows at or before any member's last training label: stacking must not see training data.

        A member's last train row at `end` has a label reaching h bars further, so rows up to end + h bars
        share label bars with it (the same purge as `app.ml.validation.unseen`).
        """
        first = int(np.min(row_times_ms))
        for name, model in zip(self.names, self.models, strict=True):
            end = _train_end_ms(model)
            if end is not None:
                end += int(getattr(model, "horizon", 0) or 0) * int(getattr(model, "bar_ms", 0) or 0)
            if end is not None and first <= end:
                raise BadInput(
                    f"stacking rows start at {_iso(first)}, within member {name}'s training data "
                    f"(train_end {_iso(end)}); fit the meta-model on rows after every member's holdout start"
                )

    def fit_stacking(
        self, signals: np.ndarray, y: np.ndarray, row_times_ms: np.ndarray | None = None, alpha: float = 1.0
    ) -> EnsemblePredictor:
        """Fit the meta-model on members' HOLDOUT signals: logistic for classifiers, convex ridge weights
        for regressors (non-negative, summing to 1, so they apply unchanged to answers in any unit)."""
        s = np.atleast_2d(np.asarray(signals, dtype="float64"))
        y = np.asarray(y, dtype="float64").reshape(-1)
        if row_times_ms is not None:
            self.check_after_training(np.asarray(row_times_ms))
        if len(s) < 10:
            raise BadInput(f"stacking needs at least 10 holdout rows, got {len(s)}")
        if self.is_classifier:
            from sklearn.linear_model import LogisticRegression

            if len(np.unique(y)) < 2:
                raise BadInput("stacking holdout has a single class; use a longer window")
            meta = LogisticRegression(C=1.0 / alpha).fit(_logit(s), y.astype(int))
            self.meta = {
                "type": "logistic",
                "coef": meta.coef_[0].tolist(),
                "intercept": float(meta.intercept_[0]),
                "rows": len(s),
            }
        else:
            m = s.shape[1]
            scale = float(np.std(y)) or 1.0
            a = np.vstack([s / scale, math.sqrt(alpha) * np.eye(m) / math.sqrt(len(s))])
            b = np.concatenate([y / scale, math.sqrt(alpha) * np.full(m, 1.0 / m) / math.sqrt(len(s))])
            w, _ = nnls(a, b)
            w = w / w.sum() if w.sum() > 0 else np.full(m, 1.0 / m)
            self.meta = {"type": "convex_ridge", "weights": w.tolist(), "rows": len(s)}
        return self

    # ---- scoring & persistence --------------------------------------------------------------------
    def score(
        self, signals: np.ndarray, y: np.ndarray, earlier_y: np.ndarray | None = None
    ) -> dict[str, Any]:
        """The ensemble's metrics beside each member's and a naive baseline's, on the same rows.

        The baseline is fitted on `earlier_y` (labels that come before the scored rows): the majority class
        for classifiers, the mean for regressors. Without it, it is fitted on `y` itself (optimistic for it).
        """
        s = np.atleast_2d(np.asarray(signals, dtype="float64"))
        result = {"ensemble": score_signal(self.kind, self.combine(s), y), "members": {}}
        for i, name in enumerate(self.names):
            result["members"][name] = score_signal(self.kind, s[:, i], y)
        reference = np.asarray(y if earlier_y is None or len(earlier_y) == 0 else earlier_y, dtype="float64")
        if self.is_classifier:
            name, constant = "majority", float(reference.mean() >= 0.5)  # the majority class as P(UP)
        else:
            name, constant = "mean", float(reference.mean())
        result["baseline"] = {"name": name, **score_signal(self.kind, np.full(len(y), constant), y)}
        return result

    def to_config(self, name: str | None = None) -> dict[str, Any]:
        return {
            "name": name,
            "kind": self.kind,
            "method": self.method,
            "models": self.names,
            "weights": self.weights.tolist(),
            "meta": self.meta,
            "created_ts": datetime.now(UTC).isoformat(),
        }

    def save_config(self, name: str, directory: Path | None = None) -> Path | str:
        """Save the ensemble as `name` (`ensemble_NNN`).

        Without `directory` (the seed's call) it goes through the store: the config file
        `<store>/ensembles/<name>.json` and its row, so `POST /ensemble/<name>/predict`, `GET /ensembles`
        and `backtest_ensemble` know it; saving a name again replaces its members, weights and method.
        With `directory`, only the file is written there (atomically).
        """
        if directory is None:
            return get_backend().save_ensemble(name, self.to_config(name))
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / f"{name}.json"
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(self.to_config(name), indent=2))
        tmp.replace(path)
        return path


def score_signal(kind: str, signal: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """F1/accuracy for classifier kinds (signal = P(positive)), RMSE/MAE for regressors."""
    signal = np.asarray(signal, dtype="float64")
    y = np.asarray(y, dtype="float64")
    if kind in CLASSIFIER_KINDS:
        from sklearn.metrics import accuracy_score, f1_score

        pred = (signal >= 0.5).astype(int)
        truth = y.astype(int)
        return {
            "accuracy": float(accuracy_score(truth, pred)),
            "f1": float(f1_score(truth, pred, zero_division=0)),
            "rows": len(y),
        }
    err = signal - y
    return {"rmse": float(np.sqrt(np.mean(err**2))), "mae": float(np.mean(np.abs(err))), "rows": len(y)}


def beats_members(kind: str, scores: dict[str, Any]) -> bool:
    """The seed's rule: use the ensemble only if it beats every member (F1 up, or RMSE down).

    It must also beat the naive baseline (accuracy of the majority class, or RMSE of the mean) when one was
    scored: F1 of the UP class alone rewards a blend that always says UP.
    """
    ens = scores["ensemble"]
    members = scores["members"].values()
    baseline = scores.get("baseline")
    if kind in CLASSIFIER_KINDS:
        beats_baseline = baseline is None or ens["accuracy"] > baseline["accuracy"]
        return beats_baseline and all(ens["f1"] > m["f1"] for m in members)
    beats_baseline = baseline is None or ens["rmse"] < baseline["rmse"]
    return beats_baseline and all(ens["rmse"] < m["rmse"] for m in members)


def _train_end_ms(model: Any) -> int | None:
    training = getattr(model, "training_", None) or {}
    if training.get("train_end_ms") is not None:
        return int(training["train_end_ms"])
    end = training.get("train_end")
    if end is None:
        return None
    if isinstance(end, int | float):
        return int(end)
    ts = datetime.fromisoformat(str(end).replace("Z", "+00:00"))
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=UTC)
    return int(ts.timestamp() * 1000)


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat()
