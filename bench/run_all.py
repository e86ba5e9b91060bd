"""Run every benchmark script in turn (``make bench``); each prints markdown for BENCHMARKS.md."""

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).parent
for script in ("model_size.py", "train_step.py", "loader.py"):
    print(f"## {script}\n", flush=True)
    subprocess.run([sys.executable, str(HERE / script)], check=True)
