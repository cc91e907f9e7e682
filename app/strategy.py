"""The two names the seed's strategy snippet imports from its own `strategies.base_strategy`.

A trading system has its own strategy framework; where it has none, these are enough to run the seed's
`MLEnhancedStrategy` as written (docs/seed-guide.md): a `Signal` record and a `BaseStrategy` to subclass.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Signal:
    """A trade idea: LONG or SHORT on `symbol`, from `strategy`, with its confidence and the reasons."""

    symbol: str
    signal: str
    strategy: str
    confidence: float
    details: dict[str, Any] = field(default_factory=dict)


class BaseStrategy:
    """Subclass it, name it, and implement `detect` (a Signal, or None when there is nothing to do)."""

    name: str = "base"

    def detect(self, symbol: str, price: float, volume: float, ts_ms: int, df: Any, fm: Any) -> Signal | None:
        raise NotImplementedError(f"{type(self).__name__}.detect")
