"""Kernel size x depth on MNIST-28, answered by ``deconvgan sweep``: the README's table and plot.

    python benchmarks/kernel_depth.py [--run] [--jobs 1] [--sweep sweeps/00000-kernel-depth]
                                      [--speed-steps 40] [--picture docs/kernel-depth.png]

With ``--run`` it starts the sweep of the README (3 kernel sizes x 3 depths x 3 seeds, 80 kimg each,
the FD-classifier logged every 20 kimg) or continues the one at ``--sweep``; without it, it only reads
what the sweep has finished. It prints one table row per combination: the final FD-classifier (mean
± std over seeds, 10,000 generated vs the 10,000 test images), parameters, G's GFLOP per image and
training images/s. The sweep's own images/s come from runs that may have shared the machine with other
jobs, so the speed column here is timed apart, in this process, alternating the combinations
(``--speed-steps`` steps each, three rounds, one thread), as ``benchmarks/upsamplers.py`` does. The
plot (``--picture``) is the FD-classifier against kimg and against training minutes, one line per run.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

from _runs import add_data_root_argument, data_root

SWEEP = ["mnist-28", "--vary", "model.kernel_size=3,4,5", "--vary", "model.g_depth+model.d_depth=0,1,2",
         "--seeds", "0,1,2", "--kimg", "80", "--metrics", "fd-classifier", "--name", "kernel-depth",
         "--set", "run.metric=fd-classifier", "--set", "run.metric_every_kimg=20"]


def images_per_s(combinations: list[dict[str, str]], root: str, steps: int, rounds: int) -> dict[str, float]:
    """Median images/s of each combination's training loop, the combinations alternated ``rounds`` times."""
    import torch
    from _loop_speed import loop_images_per_s, timed_config

    from deconvgan.data import load_dataset

    torch.set_num_threads(1)
    images = None
    speeds: dict[str, list[float]] = {}
    for _ in range(rounds):
        for combination in combinations:
            overrides = [f"{key}={value}" for keys, value in combination.items() for key in keys.split("+")]
            cfg = timed_config("mnist-28", [*overrides, f"data.root={root}"], steps)
            if images is None:
                images = load_dataset(cfg.data, cfg.model.resolution, cfg.model.channels).images[:4096]
            speeds.setdefault(_name(combination), []).append(loop_images_per_s(cfg, images))
    return {name: statistics.median(values) for name, values in speeds.items()}


def _name(combination: dict[str, str]) -> str:
    return " ".join(f"{key}={value}" for key, value in combination.items())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", action="store_true", help="start or continue the sweep first")
    parser.add_argument("--jobs", type=int, default=1, help="sweep runs at a time (with --run)")
    parser.add_argument("--sweep", type=Path, help="the sweep folder (default: the newest sweeps/*-kernel-depth)")
    parser.add_argument("--speed-steps", type=int, default=40, help="training steps per speed measurement (0: skip)")
    parser.add_argument("--speed-rounds", type=int, default=3)
    parser.add_argument("--picture", type=Path, help="copy the sweep's curves plot here")
    add_data_root_argument(parser)
    args = parser.parse_args()
    root = data_root(args.data_root)
    found = sorted(Path("sweeps").glob("[0-9]*-kernel-depth"))
    sweep = args.sweep or (found[-1] if found else None)
    if args.run:
        command = [sys.executable, "-m", "deconvgan", "sweep", "--jobs", str(args.jobs), "--data-root", root]
        command += ["--resume", str(sweep)] if sweep is not None else SWEEP
        env = dict(os.environ, OMP_WAIT_POLICY=os.environ.get("OMP_WAIT_POLICY", "PASSIVE"))
        if subprocess.run(command, env=env).returncode != 0:
            return 1
        found = sorted(Path("sweeps").glob("[0-9]*-kernel-depth"))
        sweep = args.sweep or found[-1]
    if sweep is None:
        raise SystemExit("no sweeps/*-kernel-depth folder: run with --run first")

    from deconvgan.sweep.plan import load_plan
    from deconvgan.sweep.report import CURVES_PNG, PLOTS_DIR, load_results, summarize, table, write_report

    plan = load_plan(sweep)
    rows = plan.rows()
    write_report(sweep, plan, rows)  # the report of what has finished (the sweep writes it only at its end)
    results = load_results(sweep, rows)
    summaries = summarize(results)
    lines = table(plan, summaries, ["fd-classifier"], "fd-classifier")
    header, body = lines[0], lines[1:]
    speeds = {}
    if args.speed_steps:
        combinations = [dict(s.settings) for s in summaries]
        speeds = images_per_s(combinations, root, args.speed_steps, args.speed_rounds)
    header = [*header[:-2], "images/s (1 thread, alternated)", "minutes for 80 kimg"]
    print(f"sweep {sweep}: {len(results)} of {len(rows)} runs finished")
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for summary, line in zip(summaries, body, strict=True):
        speed = speeds.get(_name(dict(summary.settings)))
        cells = [f"{speed:.0f}", f"{plan.kimg * 1000 / speed / 60:.1f}"] if speed else ["", ""]
        print("| " + " | ".join([*line[:-2], *cells]) + " |")
    if args.picture:
        args.picture.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(sweep / PLOTS_DIR / CURVES_PNG, args.picture)
        print(f"plot: {args.picture}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
