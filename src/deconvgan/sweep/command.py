"""``deconvgan sweep``: the command line of :mod:`deconvgan.sweep` (``add_parser`` and ``run``).

``deconvgan sweep mnist-28 --vary model.kernel_size=3,4,5 --vary model.g_depth=0,1 --seeds 0,1,2
--kimg 100 --jobs 2`` validates every row's config, creates ``sweeps/NNNNN-mnist-28-kernel_size-g_depth/``
and runs the rows there; ``--resume`` continues a sweep directory with its own plan.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import shlex
import sys
from pathlib import Path

from deconvgan.cliargs import kimg_float, positive_int
from deconvgan.errors import ConfigError

DEFAULT_SWEEPS_DIR = "sweeps"
DEFAULT_EVAL_IMAGES = 10_000  # evaluate's own default: the published FIDs use 10k generated vs 10k test images
# Options that define a sweep's rows: fixed once it exists, so --resume refuses them.
PLAN_OPTIONS = ("base", "vary", "variant", "seeds", "kimg", "metrics", "eval_images", "name", "data", "set")


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register ``sweep`` on the ``deconvgan`` subparsers."""
    p = subparsers.add_parser("sweep", help="train every combination of config values over seeds, evaluate, "
                                            "report (resumable)")
    p.add_argument("base", nargs="?", help="the base config: a preset name or a YAML file")
    p.add_argument("--vary", action="append", metavar="KEY=V1,V2,...", help="a config key and its values, e.g. "
                   "model.kernel_size=3,4,5 (repeatable: every combination is run)")
    p.add_argument("--variant", action="append", nargs="+", metavar=("NAME", "KEY=VALUE"),
                   help="a named recipe and what it sets, e.g. --variant hinge-sn loss.kind=hinge "
                   "model.d_norm=spectral (repeatable: one axis of recipes; a name alone is the base)")
    p.add_argument("--seeds", help="training seeds of every combination, e.g. 0,1,2 or 0-2 (default 0)")
    p.add_argument("--kimg", type=kimg_float, help="training budget of every run (default: the base config's)")
    p.add_argument("--metrics", help="evaluate's metrics of each final snapshot, comma-separated (default "
                   "fd-classifier; image folders: spectral; texture models: all texture metrics)")
    p.add_argument("--eval-images", type=positive_int, help=f"generated and real images per evaluation "
                   f"(default {DEFAULT_EVAL_IMAGES})")
    p.add_argument("--jobs", type=positive_int, default=1, help="runs at a time; each gets cores / jobs threads")
    p.add_argument("--name", help="label of the sweep directory (default: the base and the varied keys)")
    p.add_argument("--data", help="the training data of every run (as `deconvgan train --data`)")
    p.add_argument("--data-root", help="where standard datasets are (default $DECONVGAN_DATA_ROOT)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a config key in every run")
    p.add_argument("--sweeps-dir", default=DEFAULT_SWEEPS_DIR, help=f"parent of the numbered sweep directories "
                   f"(default {DEFAULT_SWEEPS_DIR})")
    p.add_argument("--resume", metavar="SWEEP_DIR", help="continue a sweep directory: finished rows are kept, "
                   "stopped ones resume from their training state")
    p.add_argument("--dry-run", action="store_true", help="check every row's config and list the rows, run nothing")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    """Run the command; returns the exit status (0; 1 if a row failed; 128 + signal if stopped)."""
    from deconvgan.sweep.plan import load_plan, save_plan
    from deconvgan.sweep.report import write_report
    from deconvgan.sweep.runner import SweepRunner, row_status, sweep_lock, threads_per_job
    from deconvgan.training.rundir import new_run_dir

    if args.resume is not None:
        given = [f"--{o.replace('_', '-')}" if o != "base" else "the base config" for o in PLAN_OPTIONS
                 if getattr(args, o) is not None]
        if given:
            raise ConfigError(f"--resume continues a sweep with its own plan: drop {given[0]} (only --jobs, "
                              "--data-root and --dry-run go with it)")
        sweep_dir = Path(args.resume)
        plan = load_plan(sweep_dir)
        if args.data_root is not None:  # the data moved: where to find it now
            plan = dataclasses.replace(plan, data_root=str(Path(args.data_root).expanduser().resolve()))
        rows = plan.rows()
    else:
        plan = new_plan(args)
        rows = plan.validate()
        plan = dataclasses.replace(plan, metrics=_metrics(args.metrics, plan))
        sweep_dir = None
    threads = threads_per_job(args.jobs)
    if args.dry_run:
        print(f"{len(rows)} rows ({len(rows) // len(plan.seeds)} combinations x {len(plan.seeds)} seed(s)), "
              f"{args.jobs} job(s) x {threads} thread(s); each: train "
              + (f"{plan.kimg:g} kimg" if plan.kimg is not None else "the base config's schedule")
              + f", evaluate {','.join(plan.metrics)}")
        for row in rows:
            status = row_status(sweep_dir / row.name) if sweep_dir is not None else "todo"
            print(f"  {row.name:<48} {status:<8} {' '.join(row.overrides)} train.seed={row.seed}")
        return 0
    if importlib.util.find_spec("matplotlib") is None:  # before hours of training, not after
        raise ConfigError("the sweep report needs matplotlib: pip install 'deconvgan[sweep]'")
    if sweep_dir is None:
        sweep_dir = new_run_dir(args.sweeps_dir, args.name or _default_name(plan))
        plan = save_plan(plan, sweep_dir)
        print(f"sweep directory: {sweep_dir}")
    with sweep_lock(sweep_dir):
        runner = SweepRunner(plan, sweep_dir, args.jobs)
        outcomes = runner.run(rows)
        if runner.stop_signal is not None:
            return 128 + runner.stop_signal
        written = write_report(sweep_dir, plan, rows)
    failed = [o for o in outcomes if o.status in ("failed", "interrupted")]
    for outcome in failed:
        print(f"error: {outcome.row.name}: {outcome.detail}", file=sys.stderr)
    print(f"report: {', '.join(str(p) for p in written)}")
    if failed:
        print(f"{len(failed)} row(s) did not finish: fix the cause and continue with  deconvgan sweep --resume "
              f"{sweep_dir}", file=sys.stderr)
        return 1
    return 0


def new_plan(args: argparse.Namespace):
    """The plan of a new sweep from the command line (not yet validated)."""
    from deconvgan.configio import read_config_source
    from deconvgan.sweep.grid import check_axes, parse_seed_list, parse_variants, parse_vary
    from deconvgan.sweep.plan import SweepPlan

    if args.base is None:
        raise ConfigError("deconvgan sweep needs a base config (a preset such as mnist-28, or a YAML file), "
                          "or --resume SWEEP_DIR")
    read_config_source(args.base)  # a missing file or unknown preset: its own one-line error first
    axes = ([parse_variants(args.variant)] if args.variant else []) + [parse_vary(text) for text in args.vary or []]
    check_axes(axes)
    base = args.base if not Path(args.base).is_file() else str(Path(args.base).resolve())
    data = args.data
    if data is not None and Path(data).expanduser().exists():  # a folder: absolute, like train's saved config
        data = str(Path(data).expanduser().resolve())
    if args.name is not None and (not args.name or any(c in args.name for c in "/\\\0")):
        raise ConfigError(f"--name {args.name!r} must be a non-empty label without slashes")
    return SweepPlan(base=base, axes=tuple(axes), seeds=parse_seed_list(args.seeds or "0"), kimg=args.kimg,
                     eval_images=args.eval_images or DEFAULT_EVAL_IMAGES, sets=tuple(args.set or ()), data=data,
                     data_root=str(Path(args.data_root).expanduser().resolve()) if args.data_root else None,
                     command=command_line(args))


def command_line(args: argparse.Namespace) -> str:
    """The ``deconvgan sweep`` command that makes this plan (for the report's header)."""
    words = ["deconvgan", "sweep", args.base]
    for variant in args.variant or []:
        words += ["--variant", *variant]
    for text in args.vary or []:
        words += ["--vary", text]
    for flag in ("seeds", "kimg", "metrics", "eval_images", "jobs", "name", "data", "data_root"):
        if getattr(args, flag) is not None:
            words += [f"--{flag.replace('_', '-')}", f"{getattr(args, flag):g}" if flag == "kimg"
                      else str(getattr(args, flag))]
    for text in args.set or []:
        words += ["--set", text]
    return shlex.join(words)


def _metrics(text: str | None, plan) -> tuple[str, ...]:
    """``--metrics`` checked against what evaluate accepts for this kind of model (default by data kind)."""
    from deconvgan.metrics.evaluate import parse_metrics
    from deconvgan.metrics.texture_eval import TEXTURE_METRICS

    cfg = plan.config_of(plan.seeds[0], [])
    if cfg.model.arch == "spatial":
        return parse_metrics(text, TEXTURE_METRICS) if text else TEXTURE_METRICS
    if text is None:
        return ("spectral",) if cfg.data.source == "folder" else ("fd-classifier",)
    names = parse_metrics(text)
    if {"fid", "kid"} & set(names):  # the Inception network must be there before any training starts
        from deconvgan.metrics.inception import resolve_network

        resolve_network()
    return names


def _default_name(plan) -> str:
    stem = Path(plan.base).stem if plan.base.endswith((".yaml", ".yml")) else plan.base
    from deconvgan.sweep.grid import short_keys

    return "-".join([stem, *short_keys(list(plan.axes)).values()])
