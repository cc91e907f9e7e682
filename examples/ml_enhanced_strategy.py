"""The seed's MLEnhancedStrategy against a running mlpipe server, using only `app.client.Client` (httpx).

    python examples/ml_enhanced_strategy.py --url http://127.0.0.1:8000 --key <predict key> --symbol BTC-USDT

Technical signal: RSI(14) of 5m candles, read from the server (`GET /features/{symbol}`, TA-Lib, the
same numbers the models see); LONG when oversold (< 30), SHORT when overbought (> 70). The signal is taken
only if the direction model agrees (UP for LONG, DOWN for SHORT) and the risk model says < 50.
`--rsi` replaces the technical reading, to see the ML confirmation step on demand.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from typing import Any

from app.client import Client


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

    def technical_rsi(self, symbol: str) -> float | None:
        rows = self.client.features(symbol, ["rsi_14"], timeframe="5m")
        return rows[-1]["rsi_14"] if rows else None

    def detect(self, symbol: str, rsi_value: float | None = None) -> Signal | None:
        if rsi_value is None:
            rsi_value = self.technical_rsi(symbol)
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
            details = {"technical": rsi_value, "ml_direction": direction["direction"], "risk_score": risk,
                       "model": direction["model"], "as_of": direction["as_of"]}
            return Signal(symbol, signal_type, self.name, direction["confidence"], details)
        return None


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--key", required=True, help="a predict key")
    parser.add_argument("--symbol", default="BTC-USDT")
    parser.add_argument("--rsi", type=float, help="use this RSI instead of the server's 5m RSI(14)")
    args = parser.parse_args()
    with Client(args.url, api_key=args.key) as client:
        strategy = MLEnhancedStrategy(client)
        rsi_value = args.rsi if args.rsi is not None else strategy.technical_rsi(args.symbol)
        print(f"{args.symbol}: 5m RSI(14) = {rsi_value}")
        signal = strategy.detect(args.symbol, rsi_value)
        print(signal or "no signal (RSI neutral, or the models do not confirm)")


if __name__ == "__main__":
    main()
