"""Scoring a replay's served periods ahead of the end: each step's periods while the next step's cycle runs.

`score_replay` scores, per kind and policy, the model each policy served on each step's period. Which
model a policy serves after step i depends only on steps 0..i (`policy_models` of a prefix is the prefix
of the whole), and a period's rows depend only on the model and on candles the replay copied once at its
start (its steps never ingest). So the period of step i can be scored as soon as step i ended, while step
i+1's builds run on the workers, and the final `score_replay` reads the same numbers from here.

    with Periods(every_ms, symbols) as periods:
        for each step: ...; periods.ahead(steps_done_so_far)     # queued
            ... periods.release() once the next step's cycle leaves a core idle (`core_idle`)
        score_replay(steps, every_ms, symbols, periods)          # after the with-block's drain

Each (model, period) is scored once, however many policies served it (the same model often serves under
`served` and `newest`, and a long-lived champion under `freeze_first`). A period whose scoring raised in
the background is simply scored again by the final pass, which raises as it always did.
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from app.core.logging import get_logger

log = get_logger(__name__)


class Periods:
    """The models and the scored period rows of one replay, computed at most once each."""

    def __init__(self, every_ms: int, symbols: list[str]) -> None:
        self.every_ms = int(every_ms)
        self.symbols = list(symbols)
        self._models: dict[str, Any] = {}
        self._rows: dict[tuple[str, int], Any] = {}
        self._queued: set[tuple[str, int]] = set()
        self._pool: ThreadPoolExecutor | None = None
        self._pending: list[Future[None]] = []
        self._waiting: list[tuple[str, int]] = []

    def model(self, name: str) -> Any:
        if name not in self._models:
            from app.services.models import load_model

            self._models[name] = load_model(name)
        return self._models[name]

    def scores(self, name: str, as_of_ms: int) -> Any:
        """`score._period_scores` of `name` on the period after `as_of_ms` (None: no row to score)."""
        key = (name, int(as_of_ms))
        if key not in self._rows:
            from app.services.replay.score import _period_scores

            self._rows[key] = _slim(_period_scores(self.model(name), key[1], self.every_ms, self.symbols))
        return self._rows[key]

    def ahead(self, steps: list[dict[str, Any]]) -> None:
        """Queue the scoring of every period the policies serve after `steps` (the steps done so far, in
        time order) that is not scored yet; `release` starts it in one background thread."""
        from app.services.replay.score import policy_models

        pairs = [(name, int(step["as_of_ms"]))
                 for policies in policy_models(steps).values() for names in policies.values()
                 for step, name in zip(steps, names, strict=True) if name is not None]
        new = [p for p in dict.fromkeys(pairs) if p not in self._queued]
        self._queued.update(new)
        self._waiting.extend(new)

    def release(self) -> None:
        """Start scoring what `ahead` queued (the driver calls it when a core is idle: `core_idle`)."""
        if not self._waiting:
            return
        if self._pool is None:
            self._pool = ThreadPoolExecutor(1, thread_name_prefix="replay-score")
        self._pending.append(self._pool.submit(self._score, self._waiting))
        self._waiting = []

    def _score(self, pairs: list[tuple[str, int]]) -> None:
        for name, as_of_ms in pairs:
            try:
                self.scores(name, as_of_ms)
            except Exception as exc:  # noqa: BLE001 - the final pass scores it again and raises there
                log.warning("replay: a period not scored ahead", model=name, as_of_ms=as_of_ms,
                            error=str(exc))

    def drain(self, cancel: bool = False) -> None:
        """Wait for the background scoring (dropping what has not started when `cancel`)."""
        if cancel:
            self._waiting = []
        self.release()
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=cancel)
            self._pool = None
        self._pending.clear()

    def __enter__(self) -> Periods:
        return self

    def __exit__(self, exc_type: object, *_: object) -> None:
        self.drain(cancel=exc_type is not None)


def _slim(scored: Any) -> Any:
    """A scored period without its feature matrix (the report reads outputs, labels, losses and meta, never
    the features): a month of periods held until the end would otherwise keep every period's features."""
    if scored is None:
        return None
    from dataclasses import replace

    from app.ml.dataset import Dataset

    return replace(scored, ds=Dataset(scored.ds.X.iloc[:, :0], scored.ds.y, scored.ds.meta))


def core_idle(event: dict[str, Any], workers: int, cores: int | None = None) -> bool:
    """From a step's progress event: does a core have nothing to do (so scoring ahead takes no core from
    the builds)? Busy: every worker while the cycle starts, one per unfinished build while it builds, one
    during rank, drift and finish."""
    import os

    if "stage" not in event:
        return False
    cores = cores or len(os.sched_getaffinity(0))
    if event["stage"] in ("queued", "ingest"):
        busy = workers
    elif event["stage"] == "build":
        busy = min(workers, max(0, int(event.get("models", 0)) - int(event.get("done", 0))))
    else:
        busy = 1
    return busy < cores
