"""Training images/s with 1 and 2 processes (torchrun, gloo) on this machine, alternating A B A B.

    python benchmarks/dist_speed.py [--preset mnist-28] [--steps 300] [--rounds 2] [--data-root ../shared/data]

Each run is `torchrun --standalone --nproc_per_node=N -m deconvgan train PRESET` for a fixed number
of steps at the same global batch; images/s is read from the run's stats.jsonl (the median of its
logging intervals, so start-up is excluded). With N processes each uses 2/N threads, so both
configurations use both cores. A 2-core machine is not a scaling test: this measures the cost of
the gradient all-reduce and of smaller per-process batches, not a speed-up.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path


def run(nproc: int, args: argparse.Namespace, threads_total: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, OMP_WAIT_POLICY="PASSIVE", OMP_NUM_THREADS=str(max(1, threads_total // nproc)))
        command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
                   "-m", "deconvgan", "train", args.preset, "--data-root", args.data_root, "--runs-dir", tmp,
                   "--no-progress", "--device", "cpu", "--batch-size", str(args.batch_size),
                   "--set", f"train.phases=[{{steps: {args.steps}}}]", "--set", "run.log_every_kimg=1",
                   "--set", "run.sample_every_kimg=100000", "--set", "run.snapshot_every_kimg=100000",
                   "--set", "run.tensorboard=false"]
        subprocess.run(command, check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        (run_dir,) = Path(tmp).iterdir()
        speeds = [json.loads(line)["images_per_s"] for line in (run_dir / "stats.jsonl").read_text().splitlines()]
        return statistics.median(speeds[1:] or speeds)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="mnist-28")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--batch-size", type=int, default=64, help="global batch")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--data-root", default=str(Path(__file__).resolve().parents[2] / "shared" / "data"))
    args = parser.parse_args()
    results: dict[int, list[float]] = {1: [], 2: []}
    for _ in range(args.rounds):
        for nproc in (1, 2):  # alternate so host noise hits both
            results[nproc].append(run(nproc, args, threads_total=2))
    print(f"| processes | threads each | global batch | images/s (median over {args.rounds} runs) | runs |")
    print("|---|---|---|---|---|")
    for nproc, speeds in results.items():
        print(f"| {nproc} | {2 // nproc} | {args.batch_size} | {statistics.median(speeds):.0f} | "
              f"{', '.join(f'{s:.0f}' for s in speeds)} |")
    ratio = statistics.median(results[2]) / statistics.median(results[1])
    print(f"2 processes / 1 process: {ratio:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
