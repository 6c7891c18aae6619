"""Benchmarks that are ``deconvgan sweep`` runs: start or continue the sweep, then print its table.

Shared by ``kernel_depth.py`` and ``recipes.py``. The sweep's own images/s come from runs that may have
shared the machine with other jobs, so :func:`alternated_speeds` times the combinations apart, in this
process, alternating them (as ``benchmarks/upsamplers.py`` does), with one thread.
"""

from __future__ import annotations

import shutil
import statistics
import subprocess
import sys
from pathlib import Path

from _runs import child_env


def newest_sweep(name: str) -> Path | None:
    """The newest ``sweeps/NNNNN-name`` folder, or None."""
    found = sorted(Path("sweeps").glob(f"[0-9]*-{name}"))
    return found[-1] if found else None


def run_or_resume(name: str, sweep_args: list[str], sweep: Path | None, jobs: int, root: str) -> Path:
    """Start the sweep ``deconvgan sweep *sweep_args --name name`` or continue ``sweep``; returns its folder."""
    command = [sys.executable, "-m", "deconvgan", "sweep", "--jobs", str(jobs), "--data-root", root]
    command += ["--resume", str(sweep)] if sweep is not None else [*sweep_args, "--name", name]
    if subprocess.run(command, env=child_env(None)).returncode != 0:
        raise SystemExit(f"the sweep did not finish: continue with  deconvgan sweep --resume {newest_sweep(name)}")
    found = sweep or newest_sweep(name)
    assert found is not None
    return found


def overrides_of(plan, settings: dict[str, str]) -> list[str]:
    """The ``--set`` overrides of one combination (its value on every axis)."""
    axes = {a.key: a for a in plan.axes}
    return [o for key, value in settings.items() for o in axes[key].overrides(value)]


def alternated_speeds(preset: str, combinations: list[list[str]], root: str, steps: int,
                      rounds: int) -> list[float]:
    """Median training images/s of ``preset`` with each override list, alternated ``rounds`` times, 1 thread."""
    import torch
    from _loop_speed import loop_images_per_s, timed_config

    from deconvgan.data import load_dataset

    torch.set_num_threads(1)
    images = None
    speeds: list[list[float]] = [[] for _ in combinations]
    for _ in range(rounds):
        for k, overrides in enumerate(combinations):
            cfg = timed_config(preset, [*overrides, f"data.root={root}"], steps)
            if images is None:
                images = load_dataset(cfg.data, cfg.model.resolution, cfg.model.channels).images[:4096]
            speeds[k].append(loop_images_per_s(cfg, images))
    return [statistics.median(s) for s in speeds]


def print_table(sweep: Path, root: str, speed_steps: int, speed_rounds: int, picture: Path | None) -> None:
    """The sweep's table (final metrics mean ± std over seeds, cost) with speeds timed apart; the curves plot.

    The speeds are of the sweep's own base config with its --set overrides (those of ``run.`` aside:
    logging and evaluation) and each combination's values."""
    from deconvgan.sweep.plan import load_plan
    from deconvgan.sweep.report import (
        CURVES_PNG,
        PLOTS_DIR,
        load_results,
        metric_keys,
        primary_metric,
        summarize,
        table,
        write_report,
    )

    plan = load_plan(sweep)
    rows = plan.rows()
    write_report(sweep, plan, rows)  # the report of what has finished (the sweep writes it only at its end)
    results = load_results(sweep, rows)
    summaries = summarize(results)
    keys = metric_keys(results)  # every number the metrics gave (mode-coverage: modes, KL and confidence)
    header, *body = table(plan, summaries, keys, primary_metric(plan, keys))
    speeds = [float("nan")] * len(summaries)
    if speed_steps:
        sets = [o for o in plan.sets if not o.startswith("run.")]
        speeds = alternated_speeds(plan.base, [[*sets, *overrides_of(plan, s.settings)] for s in summaries], root,
                                   speed_steps, speed_rounds)
    kimg = plan.kimg or float("nan")
    print(f"sweep {sweep}: {len(results)} of {len(rows)} runs finished")
    header = [*header[:-2], "images/s (1 thread, alternated)", f"minutes for {kimg:g} kimg"]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for line, speed in zip(body, speeds, strict=True):
        cells = [f"{speed:.0f}", f"{kimg * 1000 / speed / 60:.1f}"] if speed == speed else ["", ""]
        print("| " + " | ".join([*line[:-2], *cells]) + " |")
    if picture is not None:
        picture.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(sweep / PLOTS_DIR / CURVES_PNG, picture)
        print(f"plot: {picture}")


def add_sweep_arguments(parser, name: str) -> None:
    """--run, --jobs, --sweep, --speed-steps, --speed-rounds, --picture."""
    parser.add_argument("--run", action="store_true", help="start or continue the sweep first")
    parser.add_argument("--jobs", type=int, default=1, help="sweep runs at a time (with --run)")
    parser.add_argument("--sweep", type=Path, help=f"the sweep folder (default: the newest sweeps/*-{name})")
    parser.add_argument("--speed-steps", type=int, default=40, help="training steps per speed measurement (0: skip)")
    parser.add_argument("--speed-rounds", type=int, default=3)
    parser.add_argument("--picture", type=Path, help="copy the sweep's curves plot here")
