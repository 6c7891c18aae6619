"""Kernel size x depth on MNIST-28, answered by ``deconvgan sweep``: the README's table and plot.

    python benchmarks/kernel_depth.py [--run] [--jobs 1] [--sweep sweeps/00000-kernel-depth]
                                      [--speed-steps 40] [--picture docs/kernel-depth.png]

With ``--run`` it starts the sweep of the README (3 kernel sizes x 3 depths x 3 seeds, 80 kimg each,
the FD-classifier logged every 20 kimg) or continues the one at ``--sweep``; without it, it only reads
what the sweep has finished. Finished rows are kept in ``benchmarks/results/sweep-kernel-depth/``
(``_sweeps.keep_sweep``) and continue from there in a fresh checkout. It prints one table row per
combination: the final FD-classifier (mean ± std over seeds, 10,000 generated vs the 10,000 test
images), parameters, G's GFLOP per image and training images/s timed apart
(``_sweeps.alternated_speeds``). The plot (``--picture``) is the FD-classifier against kimg and
against training minutes, one line per run.
"""

from __future__ import annotations

import argparse

from _runs import add_data_root_argument, data_root
from _sweeps import add_sweep_arguments, sweep_benchmark

NAME = "kernel-depth"
SWEEP = ["mnist-28", "--vary", "model.kernel_size=3,4,5", "--vary", "model.g_depth+model.d_depth=0,1,2",
         "--seeds", "0,1,2", "--kimg", "80", "--metrics", "fd-classifier",
         "--set", "run.metric=fd-classifier", "--set", "run.metric_every_kimg=20"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_sweep_arguments(parser, NAME)
    add_data_root_argument(parser)
    args = parser.parse_args()
    root = data_root(args.data_root)
    sweep_benchmark(NAME, SWEEP, args, root)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
