"""Run every benchmark script in turn (``make bench``); each prints markdown for BENCHMARKS.md.

    python bench/run_all.py [--quick]     # --quick passes through: small sizes, few repeats, to prove they run
"""

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).parent
SCRIPTS = (
    "model_size.py", "train_step.py", "optimizer_step.py", "loader.py", "encode.py", "inference.py",
    "train_throughput.py", "memory.py",
)

parser = argparse.ArgumentParser()
parser.add_argument("--quick", action="store_true", help="passed to every script: small sizes, few repeats")
extra = ["--quick"] if parser.parse_args().quick else []
for script in SCRIPTS:
    print(f"## {script}\n", flush=True)
    start = time.perf_counter()
    subprocess.run([sys.executable, str(HERE / script), *extra], check=True)
    print(f"\n({script}: {time.perf_counter() - start:.0f} s)\n", flush=True)
