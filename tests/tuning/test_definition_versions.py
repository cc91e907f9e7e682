"""An adopted definition version is what later cycles build (config/models.yaml untouched), while its type,
horizon and timeframe still match the file's."""

from __future__ import annotations

from pathlib import Path

from app.services.cycle.start import start_cycle
from app.services.definition_versions import adopt, list_versions
from tests.tuning.helpers import BAD_START, SYMBOLS, seed


def test_the_next_cycle_builds_the_newest_adopted_version(store_dir: Path) -> None:
    seed(0.3)
    tuned = {**BAD_START, "config": {"n_estimators": 30, "max_depth": 4},
             "features": ["returns", "returns_5"]}
    adopt(BAD_START["name"], {**tuned, "config": {"n_estimators": 20, "max_depth": 3}}, "st_000000000001",
          "test", {})
    adopt(BAD_START["name"], tuned, "st_000000000002", "test", {})
    other = {**BAD_START, "name": "untouched"}
    cycle = start_cycle("operator", {"definitions": [BAD_START, other], "symbols": SYMBOLS, "ingest": False})
    built = {d["name"]: d for d in cycle.options["definitions"]}
    assert built[BAD_START["name"]]["config"] == tuned["config"]
    assert built[BAD_START["name"]]["features"] == tuned["features"]
    assert built["untouched"]["features"] == BAD_START["features"]
    assert cycle.options["definition_versions"] == {BAD_START["name"]: 3, "untouched": 1}
    assert [v.version for v in list_versions(BAD_START["name"])] == [2, 3]


def test_an_adopted_version_is_not_applied_once_the_file_changes_its_horizon(store_dir: Path) -> None:
    seed(0.3)
    adopt(BAD_START["name"], {**BAD_START, "features": ["returns"]}, "st_000000000003", "test", {})
    moved = {**BAD_START, "horizon": 5}
    cycle = start_cycle("operator", {"definitions": [moved], "symbols": SYMBOLS, "ingest": False})
    assert cycle.options["definitions"][0]["features"] == BAD_START["features"]
    assert cycle.options["definition_versions"] == {BAD_START["name"]: 1}
