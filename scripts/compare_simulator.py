"""Compare the simulator's 1m statistics with a real candle file, side by side.

Usage: .venv/bin/python scripts/compare_simulator.py PATH_TO_CSV [--symbol BTC-USDT] [--seed 42]
The file is any format `mlpipe ingest --source csv` reads (e.g. timestamp_ms,open,high,low,close,volume).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.data.simulator import MarketSimulator  # noqa: E402
from app.data.sources.csv_source import infer_symbol, read_candles_csv  # noqa: E402
from app.data.validation import validate_candles  # noqa: E402

LAGS = (1, 5, 15, 60, 240, 720)


def _autocorr(x: np.ndarray, lag: int) -> float:
    x = x - x.mean()
    return float((x[:-lag] * x[lag:]).sum() / (x * x).sum())


def statistics(frame: pd.DataFrame) -> dict[str, float]:
    """The stylized facts of 1m returns that matter for the models: tails, clustering, volume."""
    r = np.diff(np.log(frame["close"].to_numpy()))
    a = np.abs(r)
    volume = frame["volume"].to_numpy()
    window = 3 * 1440
    kurt_3d = [stats.kurtosis(r[i : i + window]) for i in range(0, len(r) - window + 1, window)]
    hour = (frame["ts"].to_numpy() // 3_600_000) % 24
    by_hour = pd.Series(volume).groupby(hour).mean()
    out = {
        "bars": float(len(frame)),
        "std of 1m log returns": float(r.std()),
        "excess kurtosis (all)": float(stats.kurtosis(r)),
        "excess kurtosis (3-day median)": float(np.median(kurt_3d)) if kurt_3d else float("nan"),
        "autocorr of returns, lag 1": _autocorr(r, 1),
    }
    out.update({f"autocorr of |returns|, lag {k}": _autocorr(a, k) for k in LAGS if k < len(a)})
    out.update({
        "corr(volume, |return|)": float(np.corrcoef(volume[1:], a)[0, 1]),
        "mean log(high/low) / std": float(np.log(frame["high"] / frame["low"]).mean() / r.std()),
        "volume coefficient of variation": float(volume.std() / volume.mean()),
        "busiest UTC hour (volume)": float(by_hour.idxmax()),
        "volume busiest/quietest hour": float(by_hour.max() / by_hour.min()),
    })
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("path", type=Path)
    parser.add_argument("--symbol", default=None, help="default: from the file name, else BTC-USDT")
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()

    real = validate_candles(read_candles_csv(args.path)).good
    symbol = args.symbol or infer_symbol(args.path)[0] or "BTC-USDT"
    simulated = MarketSimulator(args.seed).generate([symbol], int(real["ts"].iloc[0]), len(real))[symbol]
    left, right = statistics(real), statistics(simulated)
    print(f"{symbol}: {args.path.name} vs simulator (seed {args.seed}), 1m candles")
    print(f"{'statistic':34} {'real':>12} {'simulated':>12}")
    for key in left:
        print(f"{key:34} {left[key]:>12.4g} {right.get(key, float('nan')):>12.4g}")


if __name__ == "__main__":
    main()
