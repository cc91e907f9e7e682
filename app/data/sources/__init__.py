"""Where candles come from: an exchange (ccxt), CSV files, or the seeded simulator."""

from __future__ import annotations

from typing import Literal

SOURCES = ("exchange", "csv", "simulated")
SourceName = Literal["exchange", "csv", "simulated"]
