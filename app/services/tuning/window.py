"""A study's train window, loaded and featurized once per host and shared by its trials (DESIGN 10).

Every trial of a study reads the same candles (the window before the holdout cut) and chooses its
features among the same candidates (the search space's and the starting definition's). Loading the
candles from the database and computing the features was about half of a small trial; here the first
trial on a host does it once, with the warm-up of the longest candidate, and writes the result to
`<MODEL_STORE_DIR>/tuning-cache/<study>.npz` (plain arrays, no pickle; written to a temporary name and
renamed, so a reader never sees half a file). Later trials on that host, in any worker process, read it
(milliseconds), and a process keeps the last ones it read in memory.

`TrainWindow.for_definition(definition)` gives a trial exactly the rows it loaded before: the candles
from its own warm-up on (the cut by time is the range the database query had), and its features, computed
on the longer history; `required_warmup` is the history after which a feature equals its full-history
value, so a longer one changes no value. The holdout never enters: the window ends before the cut.

The study's finish removes its file; files older than `MAX_AGE_HOURS` are removed whenever one is written.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from app.core.config import get_settings
from app.core.logging import get_logger
from app.data.frames import OHLCV, candles_frame, index_ms, timeframe_ms
from app.features import compute_features, required_warmup
from app.services.cycle import data as cycle_data

log = get_logger(__name__)

FORMAT = 1
MAX_AGE_HOURS = 48.0
KEEP_IN_MEMORY = 2

_memory: OrderedDict[str, TrainWindow] = OrderedDict()
_lock = threading.Lock()


@dataclass(frozen=True)
class TrainWindow:
    """Candles of each symbol from `start_ms - warm-up` to the cut, and every candidate feature on them."""

    study_id: str
    timeframe: str
    start_ms: int
    candles: Mapping[str, pd.DataFrame]
    features: Mapping[str, pd.DataFrame]

    @property
    def names(self) -> list[str]:
        return list(next(iter(self.features.values())).columns)

    def for_definition(self, definition: Mapping[str, Any]) -> tuple[dict[str, pd.DataFrame],
                                                                       dict[str, pd.DataFrame]]:
        """The candles this definition's trial would load (from its own warm-up on) and its features."""
        wanted = list(definition.get("features") or [])
        missing = [f for f in wanted if f not in self.names]
        if missing:
            raise KeyError(f"features {missing} are not candidates of study {self.study_id}")
        warm = int(required_warmup(wanted, self.timeframe))
        first = pd.Timestamp(self.start_ms - warm * timeframe_ms(self.timeframe), unit="ms", tz="UTC")
        candles = {s: frame.loc[frame.index >= first] for s, frame in self.candles.items()}
        features = {s: self.features[s].loc[self.features[s].index >= first, wanted] for s in self.candles}
        return {s: c for s, c in candles.items() if not c.empty}, features


def candidates(space_features: list[str], base: Mapping[str, Any]) -> list[str]:
    """Every feature a trial of the study may use: the space's, and the starting definition's."""
    return list(dict.fromkeys([*space_features, *(base.get("features") or [])]))


def cache_dir() -> Path:
    return get_settings().model_store_dir / "tuning-cache"


def _path(study_id: str) -> Path:
    return cache_dir() / f"{study_id}.npz"


def train_window(study_id: str, window: Mapping[str, Any], timeframe: str, names: list[str]) -> TrainWindow:
    """The study's train window: from this process's memory, else this host's file, else the database."""
    with _lock:
        found = _memory.get(study_id)
        if found is not None:
            _memory.move_to_end(study_id)
            return found
    found = _read(study_id, names)
    if found is None:
        found = _build(study_id, window, timeframe, names)
        _write(found)
    with _lock:
        _memory[study_id] = found
        while len(_memory) > KEEP_IN_MEMORY:
            _memory.popitem(last=False)
    return found


def forget(study_id: str) -> None:
    """Drop the study's window from this process and this host (its finish calls this)."""
    with _lock:
        _memory.pop(study_id, None)
    _path(study_id).unlink(missing_ok=True)


def _build(study_id: str, window: Mapping[str, Any], timeframe: str, names: list[str]) -> TrainWindow:
    warm = int(required_warmup(names, timeframe))
    start_ms = int(window["start_ms"])
    candles = cycle_data.load_range(list(window["symbols"]), start_ms, int(window["cut_ms"]) - 1, timeframe,
                                    warm)
    features = {s: compute_features(frame, names) for s, frame in candles.items()}
    return TrainWindow(study_id, timeframe, start_ms, candles, features)


def _write(found: TrainWindow) -> None:
    directory = cache_dir()
    try:
        directory.mkdir(parents=True, exist_ok=True)
        arrays: dict[str, np.ndarray] = {
            "format": np.array([FORMAT]), "timeframe": np.array([found.timeframe]),
            "start_ms": np.array([found.start_ms], dtype="int64"), "names": np.array(found.names),
            "symbols": np.array(sorted(found.candles)),
        }
        for i, symbol in enumerate(sorted(found.candles)):
            arrays[f"ts_{i}"] = index_ms(found.candles[symbol].index)
            arrays[f"ohlcv_{i}"] = found.candles[symbol][OHLCV].to_numpy(dtype="float64")
            arrays[f"features_{i}"] = found.features[symbol].to_numpy(dtype="float64")
        temporary = directory / f".{found.study_id}.{uuid.uuid4().hex[:8]}.npz"
        with temporary.open("wb") as handle:
            np.savez(handle, **arrays)
        os.replace(temporary, _path(found.study_id))
        _prune(directory)
    except OSError as exc:  # a full or read-only disk: the trials read the database instead
        log.warning("tuning window not cached", study_id=found.study_id, error=str(exc))


def _read(study_id: str, names: list[str]) -> TrainWindow | None:
    try:
        with np.load(_path(study_id), allow_pickle=False) as data:
            if int(data["format"][0]) != FORMAT or list(data["names"]) != names:
                return None
            candles, features = {}, {}
            for i, name in enumerate(data["symbols"]):
                symbol = str(name)
                frame = pd.DataFrame(data[f"ohlcv_{i}"], columns=OHLCV)
                frame.insert(0, "ts", data[f"ts_{i}"])
                candles[symbol] = candles_frame(frame)
                index = candles[symbol].index
                features[symbol] = pd.DataFrame(data[f"features_{i}"], index=index, columns=names)
            timeframe, start_ms = str(data["timeframe"][0]), int(data["start_ms"][0])
            return TrainWindow(study_id, timeframe, start_ms, candles, features)
    except (OSError, ValueError, KeyError):  # none yet, or unreadable: built again from the database
        return None


def _prune(directory: Path) -> None:
    cutoff = time.time() - MAX_AGE_HOURS * 3600
    for path in directory.glob("*.npz"):
        try:
            if path.stat().st_mtime < cutoff:
                path.unlink()
        except OSError:
            pass
