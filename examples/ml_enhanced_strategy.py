"""The seed's MLEnhancedStrategy against a running mlpipe server, using only `app.client.Client` (httpx).

    python examples/ml_enhanced_strategy.py --url http://127.0.0.1:8000 --key <predict key> --symbol BTC-USDT

Technical signal: RSI(14) of 5m candles (computed locally from the candles you pass, or from a one-off
`--candles-csv` of 1m candles); LONG when oversold (< 30), SHORT when overbought (> 70). The signal is taken
only if the direction model agrees (UP for LONG, DOWN for SHORT) and the risk model says < 50.
"""

from __future__ import annotations

import argparse
import csv
from dataclasses import dataclass, field
from typing import Any

from app.client import Client


def rsi(closes: list[float], period: int = 14) -> float | None:
    """Wilder's RSI of the last close (None until there are period + 1 closes)."""
    if len(closes) <= period:
        return None
    gains = losses = 0.0
    for a, b in zip(closes[:period], closes[1 : period + 1], strict=True):
        gains, losses = gains + max(b - a, 0.0), losses + max(a - b, 0.0)
    avg_gain, avg_loss = gains / period, losses / period
    for a, b in zip(closes[period:-1], closes[period + 1 :], strict=True):
        avg_gain = (avg_gain * (period - 1) + max(b - a, 0.0)) / period
        avg_loss = (avg_loss * (period - 1) + max(a - b, 0.0)) / period
    return 100.0 if avg_loss == 0 else 100.0 - 100.0 / (1.0 + avg_gain / avg_loss)


def five_minute_closes(candles_1m: list[dict[str, Any]]) -> list[float]:
    """Close of each complete 5-minute bin (bins aligned to the epoch)."""
    closes: dict[int, float] = {}
    for c in candles_1m:
        closes[int(c["ts"]) // 300_000] = float(c["close"])
    bins = sorted(closes)
    return [closes[b] for b in bins[:-1]]  # the newest bin may be unfinished


@dataclass
class Signal:
    symbol: str
    signal: str
    strategy: str
    confidence: float
    details: dict[str, Any] = field(default_factory=dict)


class MLEnhancedStrategy:
    name = "ml_enhanced_momentum"

    def __init__(self, client: Client, max_risk: int = 50) -> None:
        self.client = client
        self.max_risk = max_risk

    def detect(
        self, symbol: str, candles_1m: list[dict[str, Any]] | None = None, rsi_value: float | None = None
    ) -> Signal | None:
        if rsi_value is None:
            rsi_value = rsi(five_minute_closes(candles_1m or []))
        if rsi_value is None:
            return None
        if rsi_value > 70:
            signal_type, wanted = "SHORT", "DOWN"
        elif rsi_value < 30:
            signal_type, wanted = "LONG", "UP"
        else:
            return None
        direction = self.client.predict("direction", symbol=symbol)
        risk = self.client.predict("risk", symbol=symbol)["risk"]
        if direction["direction"] == wanted and risk < self.max_risk:
            return Signal(
                symbol,
                signal_type,
                self.name,
                direction["confidence"],
                {
                    "technical": rsi_value,
                    "ml_direction": direction["direction"],
                    "risk_score": risk,
                    "model": direction["model"],
                    "as_of": direction["as_of"],
                },
            )
        return None


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--key", required=True, help="a predict key")
    parser.add_argument("--symbol", default="BTC-USDT")
    parser.add_argument("--candles-csv", help="1m candles (timestamp,open,high,low,close,volume) for the RSI")
    parser.add_argument("--rsi", type=float, help="use this RSI instead of computing one")
    args = parser.parse_args()
    candles = None
    if args.candles_csv:
        with open(args.candles_csv, newline="") as handle:
            candles = [
                {"ts": int(r["timestamp"]), "close": float(r["close"])} for r in csv.DictReader(handle)
            ]
    client = Client(args.url, api_key=args.key)
    strategy = MLEnhancedStrategy(client)
    rsi_value = args.rsi
    if rsi_value is None and candles is None:
        print("no --candles-csv or --rsi given: asking the models anyway with RSI = 25 (oversold)")
        rsi_value = 25.0
    print(strategy.detect(args.symbol, candles, rsi_value) or "no signal: the models do not confirm")


if __name__ == "__main__":
    main()
