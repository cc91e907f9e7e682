"""Replay the pipeline over the real 2021 Binance candles (not part of the tests; reads a folder you give).

    .venv/bin/python scripts/replay_real_data.py /work/shared/data/candles/binance-2021 \
        --symbols BTC-USDT,ETH-USDT --from 2021-04-10 --to 2021-04-14 --models config/models.yaml

A temporary store (SQLite, embedded Redis unless REDIS_URL is set) gets the candles through the CSV
importer the service uses (`mlpipe ingest --source csv`), then `mlpipe replay` runs on it and prints its
table; the report and plots stay in the printed directory.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("folder", type=Path)
    parser.add_argument("--symbols", default="BTC-USDT,ETH-USDT")
    parser.add_argument("--from", dest="start", default="2021-04-10")
    parser.add_argument("--to", dest="end", default="2021-04-14")
    parser.add_argument("--every", default="12h")
    parser.add_argument("--models", default="config/models.yaml")
    parser.add_argument("--workers", default="2")
    parser.add_argument("--store", type=Path, default=None)
    parser.add_argument("--one-per-kind", action="store_true", help="the first definition of each type only")
    args = parser.parse_args()
    store = args.store or Path(tempfile.mkdtemp(prefix="mlpipe-replay-real-"))
    models = Path(args.models)
    if args.one_per_kind:
        import yaml

        config = yaml.safe_load(models.read_text())
        first: dict[str, dict] = {}
        for definition in config["models_to_train"]:
            first.setdefault(definition["type"], definition)
        store.mkdir(parents=True, exist_ok=True)
        models = store / "one-per-kind.yaml"
        models.write_text(yaml.safe_dump({**config, "models_to_train": list(first.values())}))
    env = {**os.environ, "MODEL_STORE_DIR": str(store), "MARKET_DATA_SOURCE": "csv", "LOG_LEVEL": "WARNING"}
    env.pop("DATABASE_URL", None)
    mlpipe = str(Path(sys.executable).with_name("mlpipe"))
    subprocess.run([mlpipe, "migrate"], env=env, check=True)
    for symbol in args.symbols.split(","):
        subprocess.run([mlpipe, "ingest", "--source", "csv", "--symbols", symbol,
                        "--path", str(args.folder / f"{symbol}_1m.csv")], env=env, check=True)
    replay = [mlpipe, "replay", "--symbols", args.symbols, "--from", args.start, "--to", args.end,
              "--every", args.every, "--models", str(models), "--workers", args.workers, "--id", "real"]
    return subprocess.run(replay, env=env).returncode


if __name__ == "__main__":
    raise SystemExit(main())
