"""Benchmarks that are ``deconvgan sweep`` runs: start or continue the sweep, then print its table.

Shared by ``kernel_depth.py`` and ``recipes.py``. The sweep's own images/s come from runs that may have
shared the machine with other jobs, so :func:`alternated_speeds` times the combinations apart, in this
process, alternating them (as ``benchmarks/upsamplers.py`` does), with one thread.

A sweep of hours outlives the ``sweeps/`` folder it ran in, so :func:`keep_sweep` copies what its table
and plot need (the plan, each finished row's result and evaluation, its run's config, stats.jsonl and
last sample grid; no checkpoints) to ``benchmarks/results/sweep-<name>/``, which is committed. When no
``sweeps/*-<name>`` folder exists, :func:`restore_sweep` copies that back as ``sweeps/00000-<name>``,
where ``deconvgan sweep --resume`` skips the kept rows and trains only the missing ones.
"""

from __future__ import annotations

import json
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

from _runs import RESULTS_ARCHIVE, child_env

from deconvgan.runfiles import CONFIG_FILE, GRID_GLOB, SAMPLES_DIR, STATS_FILE
from deconvgan.sweep.plan import BASE_FILE, PLAN_FILE, load_plan
from deconvgan.sweep.report import final_grid, load_results, summarize
from deconvgan.sweep.runner import ROW_EVALUATION, ROW_RESULT


def newest_sweep(name: str) -> Path | None:
    """The newest ``sweeps/NNNNN-name`` folder, or None."""
    found = sorted(Path("sweeps").glob(f"[0-9]*-{name}"))
    return found[-1] if found else None


def kept_sweep(name: str) -> Path:
    """Where the results of the sweep ``name`` are kept (committed)."""
    return RESULTS_ARCHIVE / f"sweep-{name}"


def keep_sweep(sweep: Path, name: str) -> int:
    """Copy the finished rows of ``sweep`` (with its plan) into :func:`kept_sweep`; how many rows it holds.

    A sweep with another plan than the kept one replaces it: the newest sweep is the one a table shows."""
    def grid_of_the_plan(path: Path) -> dict:  # how it was started (jobs, data folder) aside
        plan = json.loads(path.read_text(encoding="utf-8"))
        return {k: v for k, v in plan.items() if k not in ("command", "data_root")}

    kept = kept_sweep(name)
    plan = grid_of_the_plan(sweep / PLAN_FILE)
    results = load_results(sweep, load_plan(sweep).rows())  # every finished row's result.json
    # the grids the report shows: each combination's first finished seed's last one
    shown = {final_grid(sweep, s) for s in summarize(results)}
    if (kept / PLAN_FILE).is_file() and grid_of_the_plan(kept / PLAN_FILE) != plan:
        print(f"{kept}: kept for another plan, replaced by {sweep}")
        shutil.rmtree(kept)
    kept.mkdir(parents=True, exist_ok=True)
    for file in (PLAN_FILE, BASE_FILE):
        shutil.copyfile(sweep / file, kept / file)
    for result in results:
        run_dir, row = result["run_dir"], Path(result["row"])  # relative to the sweep
        grids = [g for g in sorted((sweep / run_dir / SAMPLES_DIR).glob(GRID_GLOB))[-1:] if g in shown]
        files = [Path(run_dir) / CONFIG_FILE, Path(run_dir) / STATS_FILE, *(g.relative_to(sweep) for g in grids)]
        for part in (*files, row / ROW_EVALUATION, row / ROW_RESULT):
            if (sweep / part).is_file():  # a diverged row has no evaluation
                (kept / part).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(sweep / part, kept / part)  # the result last: a kept row is a whole one
    return len(list(kept.glob(f"*/{ROW_RESULT}")))


def restore_sweep(name: str) -> Path | None:
    """Copy the kept sweep ``name`` to ``sweeps/00000-<name>`` (no sweep folder of that name exists); None if
    nothing is kept."""
    kept = kept_sweep(name)
    if not (kept / PLAN_FILE).is_file():
        return None
    target = Path("sweeps") / f"00000-{name}"
    shutil.copytree(kept, target)
    print(f"{target}: restored from {kept} ({len(list(target.glob(f'*/{ROW_RESULT}')))} finished rows)")
    return target


def run_or_resume(name: str, sweep_args: list[str], sweep: Path | None, jobs: int, root: str) -> Path:
    """Start the sweep ``deconvgan sweep *sweep_args --name name`` or continue ``sweep``; returns its folder."""
    command = [sys.executable, "-m", "deconvgan", "sweep", "--jobs", str(jobs), "--data-root", root]
    command += ["--resume", str(sweep)] if sweep is not None else [*sweep_args, "--name", name]
    if subprocess.run(command, env=child_env(None)).returncode != 0:
        raise SystemExit(f"the sweep did not finish: continue with  deconvgan sweep --resume {newest_sweep(name)}")
    found = sweep or newest_sweep(name)
    assert found is not None
    return found


def sweep_benchmark(name: str, sweep_args: list[str], args, root: str) -> None:
    """What ``kernel_depth.py`` and ``recipes.py`` do: find the sweep (``--sweep``, the newest
    ``sweeps/*-name`` or the kept one), run or continue it with ``--run``, keep what has finished (also
    when the sweep stops early), print its table."""
    sweep = args.sweep or newest_sweep(name) or restore_sweep(name)
    try:
        if args.run:
            sweep = run_or_resume(name, sweep_args, sweep, args.jobs, root)
    finally:
        found = sweep or newest_sweep(name)
        if found is not None and (found / PLAN_FILE).is_file():
            print(f"{kept_sweep(name)}: {keep_sweep(found, name)} finished rows kept")
    if sweep is None:
        raise SystemExit(f"no sweeps/*-{name} folder and none kept in {kept_sweep(name)}: run with --run first")
    print_table(sweep, root, args.speed_steps, args.speed_rounds, args.picture)


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
    from deconvgan.sweep.report import CURVES_PNG, PLOTS_DIR, metric_keys, primary_metric, table, write_report

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
