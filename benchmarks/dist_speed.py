"""Training images/s of `deconvgan train` under torchrun: 1 process on 1 or 2 threads, 2 processes on 1 each.

    python benchmarks/dist_speed.py [--preset mnist-28] [--steps 150] [--rounds 2] [--data-root ../shared/data]

Each run is `torchrun --standalone --nproc_per_node=N -m deconvgan train PRESET` for a fixed number
of steps at the same global batch, with `OMP_NUM_THREADS` threads per process and
`OMP_WAIT_POLICY=PASSIVE`. The configurations run in rotating order, round after round, so a change
in host load hits them alike. A run's images/s is read from its stats.jsonl, logged every 1 kimg:
images over the total time of its logging intervals after the first (start-up, data loading, the
warm-up steps, the final snapshot and grid are outside the clock). This is the same statistic as
benchmarks/train_speed.py (images over total time), so the 1-process rows are comparable with its
mnist-28 rows (its model and batch are the preset's).

A 2-core machine is not a scaling test: with 2 processes each gets half the batch and one core,
so the comparison of "1 x 2 threads" with "2 x 1 thread" shows the cost of the gradient
all-reduce and of smaller per-process batches, not a speed-up. The "1 x 1 thread" row is the
single-core baseline.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from _runs import add_data_root_argument, data_root
from _timing import HostNoise, interval_images_per_s

from deconvgan.runfiles import STATS_FILE

CONFIGS = ((1, 1), (1, 2), (2, 1))  # (processes, threads per process)


def run(nproc: int, threads: int, args: argparse.Namespace) -> float:
    """Images/s of one torchrun run: images / total time of its logging intervals after the first."""
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, OMP_WAIT_POLICY="PASSIVE", OMP_NUM_THREADS=str(threads))
        command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
                   "-m", "deconvgan", "train", args.preset, "--data-root", args.data_root, "--runs-dir", tmp,
                   "--no-progress", "--device", "cpu", "--batch-size", str(args.batch_size),
                   "--set", f"train.phases=[{{steps: {args.steps}}}]", "--set", "run.log_every_kimg=1",
                   "--set", "run.sample_every_kimg=100000", "--set", "run.snapshot_every_kimg=100000",
                   "--set", "run.tensorboard=false"]
        subprocess.run(command, check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        (run_dir,) = Path(tmp).iterdir()
        return interval_images_per_s(run_dir / STATS_FILE, args.batch_size)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="mnist-28")
    parser.add_argument("--steps", type=int, default=150, help="steps per run (the first 1-kimg interval is warm-up)")
    parser.add_argument("--batch-size", type=int, default=64, help="global batch")
    parser.add_argument("--rounds", type=int, default=2)
    add_data_root_argument(parser)
    args = parser.parse_args()
    args.data_root = data_root(args.data_root)
    results: dict[tuple[int, int], list[float]] = {config: [] for config in CONFIGS}
    with HostNoise() as noise:
        for r in range(args.rounds):
            for config in CONFIGS[r % len(CONFIGS):] + CONFIGS[:r % len(CONFIGS)]:  # rotating order
                results[config].append(run(*config, args))
    print(f"{args.preset}, global batch {args.batch_size}, {args.steps} steps per run, {args.rounds} rounds; "
          f"{noise.describe()}\n")
    print(f"| processes | threads each | global batch | images/s (median of {args.rounds} runs) | runs |")
    print("|---|---|---|---|---|")
    for (nproc, threads), speeds in results.items():
        print(f"| {nproc} | {threads} | {args.batch_size} | {statistics.median(speeds):.0f} | "
              f"{', '.join(f'{s:.0f}' for s in speeds)} |")
    print()
    for name, config in (("1 process x 2 threads", (1, 2)), ("2 processes x 1 thread", (2, 1))):
        ratio = statistics.median(a / b for a, b in zip(results[config], results[(1, 1)], strict=True))
        print(f"{name} / 1 process x 1 thread: {ratio:.2f}x (median of the rounds' ratios)")
    ratio = statistics.median(a / b for a, b in zip(results[(2, 1)], results[(1, 2)], strict=True))
    print(f"2 processes x 1 thread / 1 process x 2 threads: {ratio:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
