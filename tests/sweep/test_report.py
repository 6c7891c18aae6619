"""The report from hand-made rows (3 seeds, known numbers), and the cost counters, without training anything."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from PIL import Image

from deconvgan.config import ModelConfig
from deconvgan.sweep.cost import model_cost, read_stats, training_speed
from deconvgan.sweep.grid import parse_vary
from deconvgan.sweep.plan import SweepPlan, save_plan
from deconvgan.sweep.report import curve_panels, summarize, table, write_report
from deconvgan.sweep.runner import ROW_RESULT

PLAN = SweepPlan(base="digits", axes=(parse_vary("model.kernel_size=3,5"),), seeds=(0, 1, 2), kimg=1.0)
FD = {"kernel_size-3": [10.0, 12.0, 14.0], "kernel_size-5": [20.0, 21.0, 25.0]}


def _fake_sweep(sweep_dir: Path, with_training_metric: bool) -> None:
    save_plan(PLAN, sweep_dir)
    for row in PLAN.rows():
        run = sweep_dir / row.name / "00000-digits-dcgan"
        (run / "samples").mkdir(parents=True)
        Image.new("L", (8, 8), 200).save(run / "samples" / "grid-0000016.png")
        fd = FD[row.combination][row.seed]
        records = [{"step": s, "kimg": s * 0.064, "loss_d": 1.0, "loss_g": 0.7, "images_per_s": 100.0 + s,
                    "wall_time_s": 3.0 * s} for s in (8, 16)]
        if with_training_metric:
            records.insert(1, {"step": 8, "kimg": 0.512, "metrics": {"fd-classifier": fd + 5}})
        (run / "stats.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records) + '{"step": 1')  # torn line
        result = {"row": row.name, "combination": row.combination, "settings": dict(row.settings), "seed": row.seed,
                  "status": "done", "run_dir": f"{row.name}/00000-digits-dcgan", "kimg": 1.024, "train_wall_s": 48.0,
                  "images_per_s": 116.0, "eval_wall_s": 2.0, "g_params": 1000 + row.seed, "d_params": 500,
                  "g_gflop_per_image": 0.5, "d_gflop_per_image": 0.2, "threads": 1,
                  "metrics": {"fd-classifier": fd}}
        (sweep_dir / row.name / ROW_RESULT).write_text(json.dumps(result))


def test_table_has_mean_and_std_over_seeds(tmp_path: Path) -> None:
    _fake_sweep(tmp_path, with_training_metric=False)
    written = write_report(tmp_path, PLAN, PLAN.rows())
    assert [p.name for p in written] == ["results.csv", "report.md", "report.html"]
    lines = list(csv.DictReader(io.StringIO((tmp_path / "results.csv").read_text())))
    assert len(lines) == 6 and [float(line["fd-classifier"]) for line in lines[:2]] == [10.0, 20.0]
    md = (tmp_path / "report.md").read_text()
    # 10, 12, 14 -> 12 ± 2 (sample std); 20, 21, 25 -> 22 ± 2.6; the lower mean is marked
    assert "| 3 | 3 | 12 ± 2 * | 1.0 k | 0.5 k | 0.5 | 116 | 0.8 |" in md
    assert "| 5 | 3 | 22 ± 2.6 |" in md
    assert "rows finished: 6 of 6" in md and "losses against kimg" in md
    page = (tmp_path / "report.html").read_text()
    assert page.count('src="data:image/png;base64,') == 4 and "12 ± 2 *" in page


def test_partial_sweep_reports_what_finished(tmp_path: Path) -> None:
    _fake_sweep(tmp_path, with_training_metric=False)
    (tmp_path / "kernel_size-5__seed-2" / ROW_RESULT).unlink()
    write_report(tmp_path, PLAN, PLAN.rows())
    md = (tmp_path / "report.md").read_text()
    assert "rows finished: 5 of 6" in md and "| 5 | 2 | 20.5 ± 0.71 |" in md


def test_curves_show_the_training_metric_when_logged(tmp_path: Path) -> None:
    _fake_sweep(tmp_path, with_training_metric=True)
    results = [json.loads((tmp_path / r.name / ROW_RESULT).read_text()) for r in PLAN.rows()]
    panel, by_time = curve_panels(tmp_path, summarize(results), "fd-classifier")
    assert panel.ylabel == "fd-classifier" and len(panel.series["kernel_size-3"]) == 3
    assert panel.series["kernel_size-5"][1] == ([0.512], [26.0])
    # the same points against minutes at the run's median speed: images/s 108 and 116 -> 112
    ((minutes,), values) = by_time.series["kernel_size-5"][1]
    assert minutes == pytest.approx(512 / 112 / 60) and values == [26.0] and "minutes" in by_time.xlabel
    rows = table(PLAN, summarize(results), ["fd-classifier"], "fd-classifier")
    assert rows[0][:3] == ["kernel_size", "seeds", "fd-classifier (mean ± std)"]


def test_speed_comes_from_stats(tmp_path: Path) -> None:
    path = tmp_path / "stats.jsonl"
    path.write_text('{"step": 1, "kimg": 0.1, "images_per_s": 50, "wall_time_s": 1}\n{"step": 1, "metrics": {}}\n'
                    '{"step": 2, "kimg": 0.2, "images_per_s": 90, "wall_time_s": 2}\n'
                    '{"step": 3, "kimg": 0.3, "images_per_s": 80, "wall_time_s": 4.5}\n{"step"')
    assert training_speed(read_stats(path)) == {"kimg": 0.3, "train_wall_s": 4.5, "images_per_s": 80}


@pytest.mark.parametrize("kernel", [3, 4])
def test_flops_are_counted_on_one_forward(kernel: int) -> None:
    cfg = ModelConfig(resolution=16, latent_dim=8, g_width=8, d_width=8, max_width=16, kernel_size=kernel)
    cost = model_cost(cfg)
    # G: Linear 8 -> 16x4x4, transposed convs 16 -> 8 (4x4 in) and 8 -> 1 (8x8 in); 2 FLOPs per multiply-add
    g_flops = 2 * 8 * 256 + 2 * 16 * 8 * kernel**2 * 16 + 2 * 8 * 1 * kernel**2 * 64
    # D: convs 1 -> 8 (8x8 out) and 8 -> 16 (4x4 out), then Linear 256 -> 1
    d_flops = 2 * 1 * 8 * kernel**2 * 64 + 2 * 8 * 16 * kernel**2 * 16 + 2 * 256
    assert cost["g_gflop_per_image"] == pytest.approx(g_flops / 1e9)
    assert cost["d_gflop_per_image"] == pytest.approx(d_flops / 1e9)
    assert cost["g_params"] == 8 * 256 + 16 * 8 * kernel**2 + 8 * kernel**2 + 1 + 2 * (16 + 8)
