"""A definition may set its own `window_days`: it trains on that many days back from the cycle's window
end, ranks beside the others, and its retrain keeps its window. A bad value is refused up front."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from app.core.errors import BadInput
from app.services.cycle import get_cycle, start_cycle
from app.services.models import list_models
from tests.cycle.helpers import definition, run_workers, seed_candles

SYMBOLS = ["BTC-USDT", "ETH-USDT"]


def _ms(iso: str) -> int:
    return int(pd.Timestamp(iso).value // 1_000_000)


def test_definitions_with_their_own_windows_train_on_them_and_compete(store_dir: Path) -> None:
    seed_candles(days=2, symbols=SYMBOLS)
    short = {**definition("xgboost", "dir_short"), "window_days": 0.5}
    default = definition("xgboost", "dir_default")
    cycle = start_cycle("operator", {"definitions": [short, default], "window_days": 1.5, "symbols": SYMBOLS,
                                     "ingest": False})
    run_workers()
    done = get_cycle(cycle.id)
    assert done.status == "succeeded", done.errors
    end = done.results["window"]["end_ms"]
    spans = {}
    for record in list_models(kind="direction"):
        first = _ms(record.training["train_start"])
        spans[record.family] = (end - first) / 86_400_000
        assert record.training.get("window_days") == (0.5 if record.family == "dir_short" else None)
    # the train part starts at the window's start (after the features' warm-up inside it)
    assert 0.4 < spans["dir_short"] <= 0.5 and 1.3 < spans["dir_default"] <= 1.5, spans
    ranked = {name.rsplit("_", 1)[0] for name, _ in done.results["ranking"]["order"]}
    assert ranked == {"dir_short", "dir_default"}


@pytest.mark.parametrize("bad", [0, -1, "seven", True])
def test_a_bad_window_is_refused_before_the_cycle_starts(store_dir: Path, bad: object) -> None:
    with pytest.raises(BadInput, match="window_days must be a positive number"):
        start_cycle("operator", {"definitions": [{**definition("xgboost", "d"), "window_days": bad}],
                                 "symbols": SYMBOLS, "ingest": False})
