"""The seed guide's ensemble blocks (12, 13) as written, in a store whose first three models are direction
predictors (the guide's `setup 12`), and the guide's directory layout after them."""

from __future__ import annotations

from typing import Any

import pytest

from tests.seed.guide import blocks, python_blocks, run, snippets

BLOCKS, SNIPPETS = python_blocks(), snippets()


@pytest.fixture(autouse=True)
def _clean_services() -> None:
    """The blocks build on each other: `walkthrough` empties the services once per module instead."""


def _p_up(answer: dict) -> float:
    return answer["confidence"] if answer["direction"] == "UP" else 1.0 - answer["confidence"]


def test_block12_an_ensemble_of_three_named_models(walkthrough: dict[str, Any]) -> None:
    from app.ml import load_model
    from app.services.ensembles import get_ensemble

    run(SNIPPETS["setup", 1], walkthrough, "setup 1")
    run(SNIPPETS["setup", 12], walkthrough, "setup 12")
    run(BLOCKS[12].mapped, walkthrough, "seed block 12")
    record = get_ensemble("ensemble_001")
    assert record.models == ["model_001", "model_002", "model_003"] and record.weights == [0.5, 0.3, 0.2]
    pred = walkthrough["pred"]
    members = [_p_up(load_model(n).predict(symbol="BTC-USDT")) for n in record.models]
    assert _p_up(pred) == pytest.approx(0.5 * members[0] + 0.3 * members[1] + 0.2 * members[2])


def test_block13_the_ensemble_backtested_beside_its_members(walkthrough: dict[str, Any]) -> None:
    from app.services.ensembles import get_ensemble

    run(BLOCKS[13].mapped, walkthrough, "seed block 13")
    results = walkthrough["results"]
    assert 0 <= results["accuracy"] <= 1 and 0 <= results["f1"] <= 1
    assert set(results["members"]) == {"model_001", "model_002", "model_003"}
    assert 0 <= walkthrough["individual"]["accuracy"] <= 1
    used = results["f1"] > walkthrough["individual"]["f1"]
    assert get_ensemble("ensemble_001").status == ("active" if used else results["status"])


def test_the_store_is_laid_out_as_the_guides_directory_structure(walkthrough: dict[str, Any]) -> None:
    from app.core.config import get_settings

    tree = next(b.code for b in blocks() if b.heading == "Directory Structure")
    root = get_settings().model_store_dir
    for name in ("config.json", "metadata.json", "README.md"):
        assert name in tree and (root / "model_001" / name).exists()
    assert len(list((root / "model_001").glob("model.*"))) == 1
    for name in ("ensemble_001.json", "ensemble_001_results.json"):
        assert name in tree and (root / "ensembles" / name).exists()
