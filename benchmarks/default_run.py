"""Time the default run exactly as a new user starts it, and keep its sample grid for the README.

    python benchmarks/default_run.py [--out docs/default-run.png] [--threads N]

Runs ``deconvgan train`` (no arguments: the embedded digits preset) in a fresh runs directory,
prints the wall time of the whole command (start-up, data, training, snapshots), the training
speed from its stats.jsonl, and writes a 64-image grid from the final snapshot.
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="docs/default-run.png", help="where to write the sample grid")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    args = parser.parse_args()
    env = dict(os.environ, OMP_WAIT_POLICY=os.environ.get("OMP_WAIT_POLICY", "PASSIVE"))
    with tempfile.TemporaryDirectory() as tmp:
        command = [sys.executable, "-m", "deconvgan", "train", "--runs-dir", tmp, "--no-progress"]
        if args.threads:
            command += ["--threads", str(args.threads)]
        start = time.perf_counter()
        subprocess.run(command, check=True, env=env, stdout=subprocess.DEVNULL)
        wall = time.perf_counter() - start
        (run_dir,) = Path(tmp).iterdir()
        stats = [json.loads(line) for line in (run_dir / "stats.jsonl").read_text().splitlines()]
        subprocess.run([sys.executable, "-m", "deconvgan", "sample", str(run_dir), "--seeds", "0-63",
                        "--grid", args.out, "--device", "cpu"], check=True, env=env, stdout=subprocess.DEVNULL)
    speeds = sorted(s["images_per_s"] for s in stats)
    print("| command | kimg | wall time (whole command) | training images/s (median of intervals) "
          "| final D(x) | final D(G(z)) |")
    print("|---|---|---|---|---|---|")
    last = stats[-1]
    print(f"| `deconvgan train` | {last['kimg']:g} | {wall / 60:.1f} min ({wall:.0f} s) | "
          f"{speeds[len(speeds) // 2]:.0f} | {last['d_real']:.2f} | {last['d_fake']:.2f} |")
    print(f"grid written to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
