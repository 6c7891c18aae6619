"""The sweep's report, recomputed from the rows' ``result.json`` files every time it is written.

* ``results.csv``: one line per finished row (its values, seed, speed, cost and every metric);
* ``report.md``: the table of mean ± std over seeds per combination, the plots (``plots/*.png``)
  and the final sample grids, linked;
* ``report.html``: the same, self-contained: plots and sample grids embedded as ``data:`` URIs, no
  external resource, so it can be mailed or archived as one file.

Curves come from each run's ``stats.jsonl``: the metric logged during training when the runs had
``run.metric`` set, else the discriminator's and generator's losses.
"""

from __future__ import annotations

import csv
import io
import json
import math
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deconvgan.atomic import write_bytes, write_text
from deconvgan.runfiles import GRID_GLOB, SAMPLES_DIR, STATS_FILE
from deconvgan.sweep.cost import read_stats, training_speed
from deconvgan.sweep.grid import Row, short_keys
from deconvgan.sweep.plan import SweepPlan
from deconvgan.sweep.plots import CostPoint, Panel, cost_png, curves_png
from deconvgan.sweep.runner import ROW_RESULT
from deconvgan.sweep.webpage import render_html

RESULTS_CSV = "results.csv"
REPORT_MD = "report.md"
REPORT_HTML = "report.html"
PLOTS_DIR = "plots"
CURVES_PNG = "curves.png"
COST_PNG = "cost.png"
ROW_COLUMNS = ("row", "combination", "seed", "status", "kimg", "train_wall_s", "images_per_s", "eval_wall_s",
               "g_params", "d_params", "g_gflop_per_image", "d_gflop_per_image", "threads")
LOWER_IS_BETTER = ("fd-classifier", "fid", "kid", "spectral-distance", "modes-kl")  # what the best-row mark uses


def load_results(sweep_dir: Path, rows: list[Row]) -> list[dict[str, Any]]:
    """The ``result.json`` of every finished row, in row order."""
    found = []
    for row in rows:
        path = sweep_dir / row.name / ROW_RESULT
        if path.is_file():
            found.append(json.loads(path.read_text(encoding="utf-8")))
    return found


def metric_keys(results: list[dict[str, Any]]) -> list[str]:
    """Every metric key any row has, in first-seen order."""
    return list(dict.fromkeys(k for r in results for k in r["metrics"]))


def primary_metric(plan: SweepPlan, keys: list[str]) -> str | None:
    """The key the plots and the best-row mark use: the first requested metric's main number."""
    for key in (*plan.metrics, *keys):
        main = {"spectral": "spectral-distance", "mode-coverage": "modes-kl"}.get(key, key)
        if main in keys:
            return main
    return None


def csv_text(plan: SweepPlan, results: list[dict[str, Any]]) -> str:
    """``results.csv``: row columns, one column per varied key, then one per metric."""
    keys = metric_keys(results)
    axes = [a.key for a in plan.axes]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([*ROW_COLUMNS[:2], *axes, *ROW_COLUMNS[2:], *keys])
    for r in results:
        writer.writerow([r["row"], r["combination"], *(r["settings"][k] for k in axes),
                         *(r[c] for c in ROW_COLUMNS[2:]), *(r["metrics"].get(k, "") for k in keys)])
    return buffer.getvalue()


@dataclass
class Summary:
    """One combination over its finished seeds."""

    combination: str
    settings: dict[str, str]
    seeds: list[int] = field(default_factory=list)
    diverged: int = 0
    values: dict[str, list[float]] = field(default_factory=dict)  # metric key -> one value per done seed
    rows: list[dict[str, Any]] = field(default_factory=list)

    def mean(self, key: str) -> float:
        values = self.values.get(key, [])
        return statistics.mean(values) if values else math.nan

    def std(self, key: str) -> float:
        values = self.values.get(key, [])
        return statistics.stdev(values) if len(values) > 1 else 0.0

    def cost(self, key: str) -> float:
        """Mean over the rows of a speed or cost field (equal for every seed where it is the model's)."""
        values = [r[key] for r in self.rows if isinstance(r.get(key), (int, float)) and math.isfinite(r[key])]
        return statistics.mean(values) if values else math.nan


def summarize(results: list[dict[str, Any]]) -> list[Summary]:
    """Per combination, in the order of first appearance."""
    summaries: dict[str, Summary] = {}
    for r in results:
        s = summaries.setdefault(r["combination"], Summary(r["combination"], dict(r["settings"])))
        s.seeds.append(r["seed"])
        s.rows.append(r)
        if r["status"] == "diverged":
            s.diverged += 1
        for key, value in r["metrics"].items():
            s.values.setdefault(key, []).append(value)
    return list(summaries.values())


def _count(n: float) -> str:
    return "" if math.isnan(n) else f"{n / 1e6:.2f} M" if n >= 1e6 else f"{n / 1e3:.1f} k"


def _mean_std(s: Summary, key: str) -> str:
    if not s.values.get(key):
        return "diverged" if s.diverged else ""
    text = f"{s.mean(key):.4g}" + (f" ± {s.std(key):.2g}" if len(s.values[key]) > 1 else "")
    return text + (f" ({s.diverged} diverged)" if s.diverged else "")


def table(plan: SweepPlan, summaries: list[Summary], keys: list[str], best: str | None) -> list[list[str]]:
    """Header and one line per combination; the best mean of ``best`` (lower is better) is marked with *."""
    header = [*short_keys(list(plan.axes)).values(), "seeds", *(f"{k} (mean ± std)" for k in keys),
              "G params", "D params", "G GFLOP/image", "training images/s", "training min"]
    finite = [s.mean(best) for s in summaries if best and not math.isnan(s.mean(best))]
    best_value = min(finite) if finite and best in LOWER_IS_BETTER else None
    lines = [header]
    for s in summaries:
        metrics = [_mean_std(s, k) + (" *" if k == best and s.mean(k) == best_value else "") for k in keys]
        lines.append([*(s.settings[a.key] for a in plan.axes), str(len(s.seeds)), *metrics,
                      _count(s.cost("g_params")), _count(s.cost("d_params")), f"{s.cost('g_gflop_per_image'):.3g}",
                      f"{s.cost('images_per_s'):.0f}", f"{s.cost('train_wall_s') / 60:.1f}"])
    return lines


def curve_panels(sweep_dir: Path, summaries: list[Summary], primary: str | None) -> list[Panel]:
    """The logged training metric against kimg and against training minutes if the runs logged one (what
    each combination reaches for the same compute), else the two losses against kimg.

    Minutes are kimg at the run's median training speed (images/s of its logged intervals): the same
    clock as the table's images/s, unaffected by evaluations, pauses or a machine shared for a while."""
    stats = {r["row"]: read_stats(sweep_dir / r["run_dir"] / STATS_FILE) for s in summaries for r in s.rows}
    logged = list(dict.fromkeys(k for records in stats.values() for rec in records for k in rec.get("metrics", {})))
    if logged:
        key = primary if primary in logged else logged[0]
        panels = [Panel(f"{key} during training", "kimg", key),
                  Panel(f"{key} for the training time", "training minutes (at the run's median images/s)", key)]
        pick = [(lambda rec, key=key: rec.get("metrics", {}).get(key))] * 2
    else:
        panels = [Panel("discriminator loss", "kimg", "loss_d"), Panel("generator loss", "kimg", "loss_g")]
        pick = [lambda rec: rec.get("loss_d"), lambda rec: rec.get("loss_g")]
    for panel, value in zip(panels, pick, strict=True):
        minutes = panel.xlabel != "kimg"
        for s in summaries:
            for r in s.rows:
                records = stats[r["row"]]
                scale = 1000 / training_speed(records)["images_per_s"] / 60 if minutes else 1.0  # kimg -> minutes
                points = [(rec["kimg"] * scale, value(rec)) for rec in records if value(rec) is not None]
                if points and all(math.isfinite(x) for x, _ in points):
                    panel.series.setdefault(s.combination, []).append(([p[0] for p in points], [p[1] for p in points]))
    return panels


def final_grid(sweep_dir: Path, summary: Summary) -> Path | None:
    """The last sample grid of the combination's first finished seed."""
    for r in summary.rows:
        grids = sorted((sweep_dir / r["run_dir"] / SAMPLES_DIR).glob(GRID_GLOB))
        if grids:
            return grids[-1]
    return None


@dataclass
class ReportParts:
    """What both renderings show."""

    title: str
    lines: list[str]  # the header paragraph, one fact per line
    table: list[list[str]]
    plots: dict[str, tuple[str, bytes]]  # file name -> (caption, PNG)
    grids: list[tuple[str, Path]]  # (combination, grid PNG)


def markdown(parts: ReportParts, sweep_dir: Path) -> str:
    """``report.md``: plots and grids linked by relative path."""
    head, *body = parts.table
    out = [f"# {parts.title}", "", *(f"{line}  " for line in parts.lines), "",
           "| " + " | ".join(head) + " |", "|" + "---|" * len(head), *("| " + " | ".join(b) + " |" for b in body), ""]
    for name, (caption, _) in parts.plots.items():
        out += [f"## {caption}", "", f"![{caption}]({PLOTS_DIR}/{name})", ""]
    if parts.grids:
        out += ["## Final sample grids (first seed of each combination)", "",
                "| " + " | ".join(c.replace("__", " ") for c, _ in parts.grids) + " |", "|" + "---|" * len(parts.grids),
                "| " + " | ".join(f"![{c}]({p.relative_to(sweep_dir).as_posix()})" for c, p in parts.grids) + " |", ""]
    return "\n".join(out)


def write_report(sweep_dir: Path, plan: SweepPlan, rows: list[Row]) -> list[Path]:
    """Write results.csv, plots/, report.md and report.html from the finished rows; returns their paths."""
    results = load_results(sweep_dir, rows)
    keys = metric_keys(results)
    primary = primary_metric(plan, keys)
    summaries = summarize(results)
    write_text(sweep_dir / RESULTS_CSV, csv_text(plan, results))
    plots: dict[str, tuple[str, bytes]] = {}
    if results:
        panels = curve_panels(sweep_dir, summaries, primary)
        plots[CURVES_PNG] = (f"{panels[0].ylabel} against kimg and training minutes, one line per run"
                             if panels[0].ylabel != "loss_d" else "losses against kimg, one line per run",
                             curves_png(panels, [s.combination for s in summaries]))
        points = [CostPoint(s.combination, s.cost("g_gflop_per_image"), s.cost("train_wall_s") / 60, s.mean(primary),
                            s.std(primary)) for s in summaries if primary and s.values.get(primary)]
        if points:
            plots[COST_PNG] = (f"final {primary} against training cost", cost_png(points, primary))
    for name, (_, png) in plots.items():
        write_bytes(sweep_dir / PLOTS_DIR / name, png)
    budget = f"{plan.kimg:g} kimg" if plan.kimg is not None else "the base config's schedule"
    parts = ReportParts(
        title=f"Sweep {sweep_dir.name}",
        lines=[f"command: `{plan.command}`" if plan.command else f"base: {plan.base}",
               f"varied: {', '.join(a.flag for a in plan.axes)}; seeds {', '.join(map(str, plan.seeds))}; "
               f"budget {budget} per run",
               f"metrics: {', '.join(plan.metrics)} of each run's final snapshot ({plan.eval_images} generated vs "
               f"up to {plan.eval_images} real images); mean ± sample std over seeds"
               + (f"; * marks the lowest {primary}" if primary in LOWER_IS_BETTER else ""),
               f"rows finished: {len(results)} of {len(rows)}"],
        table=table(plan, summaries, keys, primary), plots=plots,
        grids=[(s.combination, g) for s in summaries if (g := final_grid(sweep_dir, s)) is not None])
    write_text(sweep_dir / REPORT_MD, markdown(parts, sweep_dir))
    write_text(sweep_dir / REPORT_HTML, render_html(parts))
    return [sweep_dir / RESULTS_CSV, sweep_dir / REPORT_MD, sweep_dir / REPORT_HTML]
