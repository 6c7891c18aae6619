"""Shared by the quality benchmarks: train a row with the CLI, evaluate its final snapshot, keep the result.

Each row of a table is one training run made exactly as a user makes it (``deconvgan train``, then
``deconvgan evaluate --json``) in ``<out>/<row>/``. A finished row leaves ``result.json`` there and
is not run again, so a long benchmark can be stopped and continued (an unfinished training run is
resumed from its last training state). The final snapshot is evaluated, never the best one: picking
the best by a metric on the test split would flatter the numbers.

The hour-long tables (``archive=True``) also keep each finished row's result, with the recipe that
made it, in ``benchmarks/results/<out folder name>/<row>.json``, which is committed: a table whose
seeds were trained on different days (or machines) is printed from them without training again.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from deconvgan.atomic import write_text
from deconvgan.configio import load_config
from deconvgan.data.dataset import DATA_ROOT_ENV
from deconvgan.runfiles import CONFIG_FILE, SNAPSHOTS_DIR, STATE_FILE, STATS_FILE, STEP_SNAPSHOT_GLOB
from deconvgan.sweep.cost import read_stats  # the one stats.jsonl reader (a torn last line skipped)

DEFAULT_DATA_ROOT = Path(__file__).resolve().parents[1].parent / "shared" / "data"
RESULTS_ARCHIVE = Path(__file__).resolve().parent / "results"


@dataclass(frozen=True)
class Row:
    """One training run of a benchmark table and how to evaluate it."""

    name: str  # folder name under --out, e.g. "pack2-75kimg-seed1"
    preset: str
    kimg: float
    seed: int = 0
    sets: tuple[str, ...] = ()  # --set overrides
    metrics: tuple[str, ...] = ("fd-classifier",)
    eval_args: tuple[str, ...] = ()  # extra `deconvgan evaluate` arguments
    labels: dict[str, str] = field(default_factory=dict, compare=False)  # table columns (config, seed, ...)


def add_run_arguments(parser: argparse.ArgumentParser, out: str) -> None:
    """The options every table script has: --threads, --out, --data-root."""
    parser.add_argument("--threads", type=int, help="torch threads per run (default: torch's choice)")
    parser.add_argument("--out", type=Path, default=Path(out), help="where the runs and their results are kept")
    add_data_root_argument(parser)


def add_data_root_argument(parser: argparse.ArgumentParser) -> None:
    """--data-root, resolved by :func:`data_root`."""
    parser.add_argument("--data-root", help="folder holding mnist/ (default $DECONVGAN_DATA_ROOT or ../shared/data)")


def choices(parser: argparse.ArgumentParser, flag: str, text: str, allowed) -> list[str]:
    """Comma-separated ``text`` -> names, each one of ``allowed`` (else a one-line usage error)."""
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in allowed]
    if unknown or not names:
        parser.error(f"{flag}: {unknown[0] if unknown else text!r} is not one of {', '.join(allowed)}")
    return names


def data_root(value: str | None) -> str:
    """--data-root, else $DECONVGAN_DATA_ROOT, else ../shared/data beside the project."""
    root = value or os.environ.get(DATA_ROOT_ENV) or str(DEFAULT_DATA_ROOT)
    if not Path(root).is_dir():
        raise SystemExit(f"data root {root} does not exist: pass --data-root (the folder holding mnist/)")
    return root


def child_env(threads: int | None) -> dict[str, str]:
    """Environment of the training and evaluation commands: passive OpenMP waiting, optional thread count."""
    env = dict(os.environ, OMP_WAIT_POLICY=os.environ.get("OMP_WAIT_POLICY", "PASSIVE"))
    if threads:
        env["OMP_NUM_THREADS"] = str(threads)
    return env


def run_dir_of(row_dir: Path) -> Path | None:
    """The (newest) training run inside a row's folder, if any."""
    found = sorted(p for p in row_dir.glob("[0-9]*-*") if p.is_dir())
    return found[-1] if found else None


def run_row(row: Row, out: Path, root: str, threads: int | None, log=print, archive: bool = False) -> dict:
    """Train (or resume) and evaluate ``row`` under ``out``; the cached result when it already finished.

    With ``archive``, a result kept in :data:`RESULTS_ARCHIVE` counts as finished too (once its recipe is
    checked against the row's), and a finished row is copied there."""
    row_dir = out / row.name
    result_path = row_dir / "result.json"
    archived = RESULTS_ARCHIVE / out.name / f"{row.name}.json"
    existing = run_dir_of(row_dir) if row_dir.is_dir() else None
    if existing is not None:
        existing_recipe = _recipe(load_config(existing / CONFIG_FILE))
        check_recipe(row, existing_recipe, f"{existing}: trained", "move the row's folder away (or pass another --out)")
    if result_path.is_file():
        result = json.loads(result_path.read_text())
        if archive and not archived.is_file() and existing is not None:
            keep_in_archive(archived, result, existing_recipe)
        return result
    if archive and archived.is_file():
        result = json.loads(archived.read_text())
        check_recipe(row, result["recipe"], f"{archived}: kept for a run trained", f"delete {archived}")
        return result
    row_dir.mkdir(parents=True, exist_ok=True)
    env = child_env(threads)
    train = [sys.executable, "-m", "deconvgan", "train", "--data-root", root, "--no-progress"]
    if existing is not None and (existing / STATE_FILE).is_file():  # continue (or just close) the run
        train += ["--resume", str(existing)]  # with its own config: preset, seed, kimg and --set are in it
    else:  # none yet, or one stopped before its first training state: start a new one beside it
        train += [row.preset, "--runs-dir", str(row_dir), "--kimg", f"{row.kimg:g}", "--seed", str(row.seed)]
        for override in row.sets:
            train += ["--set", override]
    if threads:
        train += ["--threads", str(threads)]
    log(f"[{time.strftime('%H:%M:%S')}] {row.name}: training {row.kimg:g} kimg")
    subprocess.run(train, check=True, env=env, stdout=subprocess.DEVNULL)
    run_dir = run_dir_of(row_dir)
    assert run_dir is not None
    steps = [r for r in read_stats(run_dir / STATS_FILE) if "images_per_s" in r]

    log(f"[{time.strftime('%H:%M:%S')}] {row.name}: evaluating {','.join(row.metrics)}")
    report = run_dir / "evaluation.json"
    start = time.perf_counter()
    metrics = evaluate(run_dir, row, root, threads, report)
    result = {
        "row": row.name, **row.labels, "preset": row.preset, "kimg": steps[-1]["kimg"], "seed": row.seed,
        "sets": list(row.sets), "threads": threads or "default",
        "train_wall_s": steps[-1]["wall_time_s"],  # the whole training, snapshots and grids included
        "images_per_s": statistics.median(r["images_per_s"] for r in steps),
        "eval_wall_s": round(time.perf_counter() - start, 1),
        "metrics": metrics,
    }
    write_text(result_path, json.dumps(result, indent=2) + "\n")
    if archive:
        keep_in_archive(archived, result, _recipe(load_config(run_dir / CONFIG_FILE)))
    return result


def keep_in_archive(path: Path, result: dict, recipe: dict) -> None:
    """Write a finished row's ``result`` to ``path`` in the archive, with the recipe of its run."""
    write_text(path, json.dumps({**result, "recipe": recipe}, indent=2) + "\n")


def _recipe(cfg) -> dict:
    """What makes a run's result: model, loss, augmentation and optimisation (not its length, seed or paths)."""
    data = cfg.to_dict()
    train = {k: v for k, v in data["train"].items() if k not in ("phases", "seed")}
    return {"model": data["model"], "loss": data["loss"], "augment": data["augment"], "train": train,
            "data": {k: data["data"][k] for k in ("source", "fraction", "fraction_seed", "hflip")}}


def check_recipe(row: Row, saved: dict, what: str, fix: str) -> None:
    """Stop if a kept run (or archived result) of ``row`` has another recipe (``saved``, as :func:`_recipe`
    gives it) than the row's preset and --set give now (a preset changed since): its result would be
    passed off as the new recipe's. ``what`` and ``fix`` name the kept run and the way out."""
    wanted = _recipe(load_config(row.preset, list(row.sets)))
    for section, values in wanted.items():
        for key, value in values.items():
            if saved[section].get(key) != value:
                raise SystemExit(f"{what} with {section}.{key}={saved[section].get(key)!r}, but {row.preset} "
                                 f"now gives {value!r}: {fix} to train the new recipe")


def evaluate(snapshot: Path, row: Row, root: str, threads: int | None, report: Path) -> dict[str, float]:
    """``deconvgan evaluate`` of a snapshot (or a run's final one) with the row's metrics and arguments,
    its JSON written to ``report``; returns the metrics."""
    subprocess.run([sys.executable, "-m", "deconvgan", "evaluate", str(snapshot), "--data-root", root,
                    "--metrics", ",".join(row.metrics), "--json", str(report), "--no-progress", *row.eval_args],
                   check=True, env=child_env(threads), stdout=subprocess.DEVNULL)
    return json.loads(report.read_text())["metrics"]


def mean_std(values: list[float], digits: int = 1) -> str:
    """``"12.3 ± 0.4"`` (sample standard deviation), or the single value."""
    if len(values) == 1:
        return f"{values[0]:.{digits}f}"
    return f"{statistics.mean(values):.{digits}f} ± {statistics.stdev(values):.{digits}f}"


def minutes(seconds: float) -> str:
    return f"{seconds / 60:.1f} min"


def progress(row: Row, out: Path, root: str, threads: int | None, every_kimg: float, log=print) -> list[dict]:
    """The row's metrics over its run: each kept step snapshot about every ``every_kimg`` (and the last).

    Scores the run's step snapshots with ``deconvgan evaluate`` and the row's metrics and
    evaluation arguments, so the values are comparable with the row's final result. Returns
    ``[{"snapshot", "kimg", "train_s", "metrics"}]`` in training order; each point is cached in ``progress.json``
    beside the row's result, so a stopped script continues where it left off.
    """
    run_dir = run_dir_of(out / row.name)
    assert run_dir is not None, f"{row.name}: train the row first (run_row)"
    cache_path = out / row.name / "progress.json"
    cache = json.loads(cache_path.read_text()) if cache_path.is_file() else {}
    walls = sorted((r["step"], r["wall_time_s"]) for r in read_stats(run_dir / STATS_FILE) if "wall_time_s" in r)
    batch = _batch_size(run_dir)
    snapshots = [(path, int(path.stem.removeprefix("step-"))) for path in
                 sorted((run_dir / SNAPSHOTS_DIR).glob(STEP_SNAPSHOT_GLOB))]  # names from step_snapshot_name
    chosen: list[tuple[Path, int, float]] = []  # near each multiple of every_kimg, and the final snapshot
    slack = 0.05 * every_kimg  # a periodic snapshot lands up to a batch short of its kimg
    target = every_kimg
    for i, (path, step) in enumerate(snapshots):
        kimg = step * batch / 1000
        if i == len(snapshots) - 1:
            if chosen and kimg - chosen[-1][2] < slack:  # the final snapshot just after a periodic one
                chosen.pop()
        elif kimg < target - slack:
            continue
        chosen.append((path, step, kimg))
        target = (math.floor((kimg + slack) / every_kimg) + 1) * every_kimg
    points = []
    for path, step, kimg in chosen:
        if path.name not in cache:
            log(f"[{time.strftime('%H:%M:%S')}] {row.name}: evaluating {path.name} ({kimg:g} kimg)")
            report = out / row.name / "progress-evaluation.json"
            metrics = evaluate(path, row, root, threads, report)
            report.unlink()
            train_s = max((w for s, w in walls if s <= step), default=0.0)
            cache[path.name] = {"snapshot": path.name, "kimg": kimg, "train_s": train_s, "metrics": metrics}
            write_text(cache_path, json.dumps(cache, indent=2) + "\n")
        points.append(cache[path.name])
    return points


def _batch_size(run_dir: Path) -> int:
    """The run's global batch size, from its resolved config."""
    return load_config(run_dir / CONFIG_FILE).train.batch_size
