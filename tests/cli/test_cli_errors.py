import os
import subprocess
import sys
from pathlib import Path


def test_a_command_on_an_unmigrated_database_says_to_migrate(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env["MODEL_STORE_DIR"] = str(tmp_path)
    mlpipe = Path(sys.executable).with_name("mlpipe")

    done = subprocess.run([str(mlpipe), "models"], env=env, capture_output=True, text=True, timeout=60)

    assert done.returncode == 1
    assert "run `mlpipe migrate`" in done.stderr and "Traceback" not in done.stderr
