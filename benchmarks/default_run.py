"""Time the default run exactly as a new user starts it, and keep its sample grid for the README.

    python benchmarks/default_run.py [--out docs/default-run.png] [--threads N]

Runs ``deconvgan train`` (no arguments: the embedded digits preset) in a fresh runs directory and
prints the wall time of that whole command (Python start-up and imports, data, training, sample
grids, snapshots and training states), the training speed from its stats.jsonl (all images over
the training time of its logging intervals, grids and snapshots excluded), then times
``deconvgan sample`` writing a 64-image grid from the final snapshot, and how busy the rest of the
host was meanwhile.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _timing import HostNoise, interval_images_per_s

from deconvgan.configio import load_config
from deconvgan.runfiles import STATS_FILE


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="docs/default-run.png", help="where to write the sample grid")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    args = parser.parse_args()
    env = dict(os.environ, OMP_WAIT_POLICY=os.environ.get("OMP_WAIT_POLICY", "PASSIVE"))
    with tempfile.TemporaryDirectory() as tmp, HostNoise() as noise:
        command = [sys.executable, "-m", "deconvgan", "train", "--runs-dir", tmp, "--no-progress"]
        if args.threads:
            command += ["--threads", str(args.threads)]
        start = time.perf_counter()  # the whole command: interpreter and imports, data, training, outputs
        subprocess.run(command, check=True, env=env, stdout=subprocess.DEVNULL)
        train_wall = time.perf_counter() - start
        (run_dir,) = Path(tmp).iterdir()
        stats = [json.loads(line) for line in (run_dir / STATS_FILE).read_text().splitlines()]
        batch = load_config(None).train.batch_size  # the default run's
        speed = interval_images_per_s(run_dir / STATS_FILE, batch, skip_first=False)
        sample = [sys.executable, "-m", "deconvgan", "sample", str(run_dir), "--seeds", "0-63",
                  "--grid", args.out, "--device", "cpu"]
        start = time.perf_counter()
        subprocess.run(sample, check=True, env=env, stdout=subprocess.DEVNULL)
        sample_wall = time.perf_counter() - start
    last = stats[-1]
    print(f"threads: {args.threads or 'torch default'}, OMP_WAIT_POLICY={env['OMP_WAIT_POLICY']}; {noise.describe()}\n")
    print("| command | kimg | wall time of the whole command | training images/s (all images / training time) "
          "| final D(x) | final D(G(z)) |")
    print("|---|---|---|---|---|---|")
    print(f"| `deconvgan train` | {last['kimg']:g} | {train_wall / 60:.1f} min ({train_wall:.0f} s) | {speed:.0f} "
          f"| {last['d_real']:.2f} | {last['d_fake']:.2f} |")
    print(f"| `deconvgan sample RUN --seeds 0-63 --grid` | | {sample_wall:.1f} s | | | |")
    print(f"\ngrid written to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
