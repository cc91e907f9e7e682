"""Model use cases on a real database and store: files and rows move together, loads are verified."""

from __future__ import annotations

import json
import os
import threading
import time
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import pytest
from sqlmodel import select

from app.core.db import session_scope
from app.core.errors import BadInput, Conflict, IntegrityError, NotFound
from app.services import models as svc
from app.tables.models import ModelRecord

SEED_FIELDS = {
    "name", "type", "kind", "description", "created_ts", "version", "status", "features", "feature_count",
    "hyperparams", "training", "performance", "live_performance", "dependencies",
    "features_given", "feature_substitutions",  # DESIGN 3: the list as given, and what was fed instead
}


class TinyLinear:
    """A stand-in model with the BaseModel surface the store relies on (store mechanics only)."""

    kind: ClassVar[str] = "direction"
    model_type: ClassVar[str] = "xgboost"
    artifact_file: ClassVar[str] = "model.json"
    is_classifier: ClassVar[bool] = True

    def __init__(self, alpha: float = 1.0, horizon: int = 5, timeframe: str = "1m") -> None:
        self.alpha, self.horizon, self.timeframe = alpha, horizon, timeframe

    def get_params(self) -> dict[str, Any]:
        return {"alpha": self.alpha, "horizon": self.horizon, "timeframe": self.timeframe}

    def fit(self, X: pd.DataFrame, y: np.ndarray) -> TinyLinear:
        self.feature_names_ = list(X.columns)
        A = X.to_numpy()
        self.coef_ = np.linalg.solve(A.T @ A + self.alpha * np.eye(A.shape[1]), A.T @ y)
        self.training_ = {"symbols": ["BTC-USDT"], "data_points": len(X), "train_ratio": 0.8,
                          "validation_ratio": 0.2, "window": "7d", "data_source": "simulated"}
        self.performance_ = {"accuracy": 0.61, "precision": 0.6, "recall": 0.58, "f1": 0.59,
                             "baseline": "majority", "baseline_accuracy": 0.52,
                             "skill": (0.61 - 0.52) / 0.48, "roc_auc": float("nan")}
        return self

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        return X[self.feature_names_].to_numpy() @ self.coef_

    def save_artifacts(self, directory: Path) -> dict[str, Any]:
        (directory / self.artifact_file).write_text(json.dumps({"coef": self.coef_.tolist()}))
        return {"features": self.feature_names_, "hyperparams": self.get_params()}

    @classmethod
    def load_artifacts(cls, directory: Path, config: dict[str, Any]) -> TinyLinear:
        model = cls(**config["hyperparams"])
        model.feature_names_ = config["features"]
        model.coef_ = np.array(json.loads((directory / cls.artifact_file).read_text())["coef"])
        return model


class BrokenSave(TinyLinear):
    def save_artifacts(self, directory: Path) -> dict[str, Any]:
        (directory / self.artifact_file).write_text("partial")
        raise RuntimeError("disk full")


@pytest.fixture()
def frame() -> pd.DataFrame:
    rng = np.random.default_rng(7)
    return pd.DataFrame(rng.normal(size=(200, 3)), columns=["rsi_14", "atr_14", "returns"])


@pytest.fixture()
def fitted(frame: pd.DataFrame) -> TinyLinear:
    y = frame.to_numpy() @ np.array([0.5, -1.0, 2.0])
    return TinyLinear().fit(frame, y)


@pytest.fixture(autouse=True)
def stand_in_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(svc, "_model_class_for", lambda kind: TinyLinear)


def _model_dirs(store: Path) -> list[str]:
    return sorted(p.name for p in store.iterdir() if p.is_dir())


def test_save_publishes_files_and_row_with_their_hashes(store_dir: Path, fitted: TinyLinear) -> None:
    record = svc.save_model(fitted)
    assert record.name == "tiny_linear_001" and record.store_dir == "model_001"
    files = {p.name for p in (store_dir / "model_001").iterdir()}
    assert files == {"model.json", "config.json", "metadata.json", "README.md"}
    stored = svc.get_model("tiny_linear_001")
    assert set(stored.artifact_sha256) == files - {"metadata.json"}  # a copy of the row, never verified
    assert stored.created_ts.tzinfo is not None and stored.created_ts.utcoffset().total_seconds() == 0
    assert stored.performance["roc_auc"] is None  # NaN is not JSON; Postgres would refuse it
    assert stored.score == pytest.approx(100 * (0.61 - 0.52) / 0.48)


def test_metadata_json_has_the_seed_fields_with_real_values(store_dir: Path, fitted: TinyLinear) -> None:
    svc.save_model(fitted, name="direction_predictor_001")
    meta = json.loads((store_dir / "model_001" / "metadata.json").read_text())
    assert set(meta) == SEED_FIELDS
    assert meta["name"] == "direction_predictor_001" and meta["version"] == 1
    assert meta["feature_count"] == 3 and meta["features"] == ["rsi_14", "atr_14", "returns"]
    assert meta["status"] == "candidate" and meta["type"] == "xgboost"
    assert datetime.fromisoformat(meta["created_ts"]).tzinfo is not None
    assert set(meta["training"]) == {"symbols", "data_points", "train_ratio", "validation_ratio", "window",
                                     "data_source"}
    assert meta["training"]["data_points"] == 200
    assert meta["performance"]["backtest_accuracy"] == 0.61
    assert meta["performance"]["baseline"] == {"name": "majority", "accuracy": 0.52}
    assert {"backtest_accuracy", "backtest_precision", "backtest_recall", "backtest_f1", "baseline", "skill",
            "window"} <= set(meta["performance"])
    assert set(meta["live_performance"]) == {"accuracy", "last_updated", "trades_evaluated"}
    assert meta["dependencies"] and meta["dependencies"][0].startswith("xgboost==")
    readme = (store_dir / "model_001" / "README.md").read_text()
    assert "baseline" in readme and "rsi_14" in readme and "0.5200" in readme


def test_round_trip_gives_identical_predictions(
    store_dir: Path, fitted: TinyLinear, frame: pd.DataFrame
) -> None:
    record = svc.save_model(fitted)
    for key in (record.name, record.store_dir):
        loaded = svc.load_model(key)
        np.testing.assert_array_equal(loaded.predict(frame), fitted.predict(frame))
        assert loaded.name_ == record.name


def test_tampered_artifact_is_refused_on_load(store_dir: Path, fitted: TinyLinear) -> None:
    record = svc.save_model(fitted)
    path = store_dir / record.store_dir / "model.json"
    path.write_text(json.dumps({"coef": [9.0, 9.0, 9.0]}))
    with pytest.raises(IntegrityError, match="model.json was modified"):
        svc.load_model(record.name)


def test_failed_build_leaves_no_directory_and_no_row(store_dir: Path, frame: pd.DataFrame) -> None:
    broken = BrokenSave().fit(frame, np.zeros(len(frame)))
    with pytest.raises(RuntimeError, match="disk full"):
        svc.save_model(broken)
    assert list(store_dir.iterdir()) == []
    assert svc.list_models() == []


def test_taken_name_is_refused_before_anything_is_written(store_dir: Path, fitted: TinyLinear) -> None:
    svc.save_model(fitted, name="direction_predictor_001")
    with pytest.raises(Conflict, match="already exists"):
        svc.save_model(fitted, name="direction_predictor_001")
    assert _model_dirs(store_dir) == ["model_001"]


def test_insert_losing_a_name_race_removes_its_directory(
    store_dir: Path, fitted: TinyLinear, monkeypatch: pytest.MonkeyPatch
) -> None:
    svc.save_model(fitted, name="direction_predictor_001")
    monkeypatch.setattr(svc, "_find", lambda session, name: None)  # the other writer committed just after
    with pytest.raises(Conflict, match="already exists"):
        svc.save_model(fitted, name="direction_predictor_001")
    assert _model_dirs(store_dir) == ["model_001"]
    assert len(svc.list_models()) == 1


def test_failed_commit_removes_the_published_directory(
    store_dir: Path, fitted: TinyLinear, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_scope = svc.session_scope

    @contextmanager
    def failing_commit(*args, **kwargs):
        with real_scope(*args, **kwargs) as session:
            yield session
            if any(isinstance(row, ModelRecord) for row in session.new):
                raise OSError("connection lost during commit")

    monkeypatch.setattr(svc, "session_scope", failing_commit)
    with pytest.raises(OSError, match="connection lost"):
        svc.save_model(fitted)
    monkeypatch.undo()
    assert list(store_dir.iterdir()) == []
    assert svc.list_models() == []


def test_versions_increase_within_a_family(store_dir: Path, fitted: TinyLinear) -> None:
    names = [svc.save_model(fitted, name="direction_predictor").name for _ in range(2)]
    assert names == ["direction_predictor_001", "direction_predictor_002"]
    assert svc.next_version("direction_predictor") == 3
    assert svc.next_version("risk_scorer") == 1


def test_concurrent_saves_of_one_family_get_distinct_versions(store_dir: Path, fitted: TinyLinear) -> None:
    names: list[str] = []
    errors: list[BaseException] = []

    def save() -> None:
        try:
            names.append(svc.save_model(fitted, name="direction_predictor").name)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=save) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert sorted(names) == [f"direction_predictor_{i:03d}" for i in range(1, 5)]
    rows = svc.list_models()
    assert sorted(r.store_dir for r in rows) == _model_dirs(store_dir)  # no directory without its row


def test_invalid_names_and_statuses_are_refused(store_dir: Path, fitted: TinyLinear) -> None:
    with pytest.raises(BadInput, match="invalid model name"):
        svc.save_model(fitted, name="../evil")
    with pytest.raises(BadInput, match="unknown status"):
        svc.save_model(fitted, status="shiny")
    with pytest.raises(BadInput, match="not fitted"):
        svc.save_model(TinyLinear())
    assert list(store_dir.iterdir()) == []


def test_unknown_model_is_not_found_with_its_family(store_dir: Path, fitted: TinyLinear) -> None:
    svc.save_model(fitted, name="direction_predictor")
    with pytest.raises(NotFound, match="direction_predictor_001"):
        svc.get_model("direction_predictor_009")
    with pytest.raises(NotFound):
        svc.load_model("model_042")


def test_lifecycle_transitions_are_validated_and_recorded(store_dir: Path, fitted: TinyLinear) -> None:
    name = svc.save_model(fitted).name
    assert svc.set_status(name, "active", "best of its kind", cycle_id="c1").status == "active"
    with pytest.raises(Conflict, match="it can become archived, superseded"):
        svc.set_status(name, "candidate", "no way back")
    svc.set_status(name, "superseded", "retrained as version 2", numbers={"f1_new": 0.6, "f1_old": 0.5})
    svc.set_status(name, "archived", "too many models")
    events = [(e.event, e.numbers.get("to")) for e in svc.model_events(name)]
    assert events == [("trained", None), ("promoted", "active"), ("superseded", "superseded"),
                      ("archived", "archived")]
    assert svc.model_events(name)[2].numbers["f1_new"] == 0.6
    assert svc.model_events(name)[1].cycle_id == "c1"
    with pytest.raises(BadInput):
        svc.set_status(name, "retired", "unknown")


def test_failed_model_cannot_be_activated(store_dir: Path, fitted: TinyLinear) -> None:
    name = svc.save_model(fitted).name
    svc.set_status(name, "failed", "validation broke")
    with pytest.raises(Conflict, match="failed; it can become nothing else"):
        svc.set_status(name, "active", "try anyway")


def test_status_change_rewrites_metadata_and_model_still_loads(store_dir: Path, fitted: TinyLinear) -> None:
    record = svc.save_model(fitted)
    svc.set_status(record.name, "active", "promoted")
    svc.update_live_performance(record.name, accuracy=0.55, trades_evaluated=145)
    meta = json.loads((store_dir / record.store_dir / "metadata.json").read_text())
    assert meta["status"] == "active"
    assert meta["live_performance"]["trades_evaluated"] == 145
    assert svc.load_model(record.name).feature_names_ == fitted.feature_names_


def test_list_filters_by_status_and_kind(store_dir: Path, fitted: TinyLinear) -> None:
    first = svc.save_model(fitted).name
    second = svc.save_model(fitted).name
    svc.set_status(first, "active", "promoted")
    assert [r.name for r in svc.list_models(status="active")] == [first]
    assert [r.name for r in svc.list_models(status="candidate", kind="direction")] == [second]
    assert svc.list_models(kind="risk") == []
    assert [r.name for r in svc.list_models()] == [second, first]  # newest first
    with pytest.raises(BadInput, match="unknown kind"):
        svc.list_models(kind="weather")


def test_sweep_removes_orphans_keeps_recorded_and_fresh_dirs(store_dir: Path, fitted: TinyLinear) -> None:
    svc.save_model(fitted)
    store = svc.model_store()
    orphan, _ = store.write(lambda d: (d / "model.json").write_text("{}"))  # a crash before the insert
    fresh, _ = store.write(lambda d: (d / "model.json").write_text("{}"))
    old = time.time() - 7200
    os.utime(store_dir / orphan, (old, old))
    os.utime(store_dir / "model_001", (old, old))
    assert svc.sweep_store(older_than_s=3600) == {"tmp": [], "orphans": [orphan], "metadata": []}
    assert _model_dirs(store_dir) == ["model_001", fresh]
    with session_scope() as session:
        assert session.exec(select(ModelRecord.store_dir)).all() == ["model_001"]
