"""A tiny sweep end to end (2 kernel sizes x 1 seed, 2 jobs): rows, results, report, resume, a stop signal.

Each training or evaluation is a real ``python -m deconvgan`` child (about 3 s of Python start each), so
the sweep is run once per module and copied for the tests that change it.
"""

from __future__ import annotations

import base64
import csv
import dataclasses
import json
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from deconvgan.cli import main
from deconvgan.runfiles import STATE_FILE, STATS_FILE
from deconvgan.sweep.plan import load_plan
from deconvgan.sweep.report import RESULTS_CSV
from deconvgan.sweep.runner import ROW_LOG, ROW_RESULT, row_run_dir, row_status
from deconvgan.training import train

TINY = ["--set", "model.g_width=8", "--set", "model.d_width=8", "--set", "model.max_width=16",
        "--set", "model.latent_dim=8", "--set", "run.tensorboard=false", "--set", "train.batch_size=16",
        "--set", "run.log_every_kimg=0.016", "--set", "run.sample_every_kimg=0.048", "--set", "run.grid_size=4",
        "--set", "run.device=cpu"]
SWEEP = ["sweep", "digits", "--vary", "model.kernel_size=3,4", "--kimg", "0.112", "--jobs", "2",
         "--metrics", "spectral", "--eval-images", "64", "--name", "tiny", *TINY]  # 7 steps of 16 images
ROWS = ("kernel_size-3__seed-0", "kernel_size-4__seed-0")


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Path:
    sweeps = tmp_path_factory.mktemp("sweeps")
    assert main([*SWEEP, "--sweeps-dir", str(sweeps)]) == 0
    (sweep_dir,) = sweeps.iterdir()
    return sweep_dir


@pytest.fixture
def sweep_copy(finished: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(finished, tmp_path / finished.name))


def _result(sweep_dir: Path, row: str) -> dict:
    return json.loads((sweep_dir / row / ROW_RESULT).read_text())


def _commands(sweep_dir: Path, row: str) -> list[str]:
    return [line for line in (sweep_dir / row / ROW_LOG).read_text().splitlines() if line.startswith("$ deconvgan")]


def test_every_row_trains_and_is_evaluated(finished: Path) -> None:
    assert finished.name == "00000-tiny"
    for row, kernel in zip(ROWS, (3, 4), strict=True):
        result = _result(finished, row)
        assert result["status"] == "done" and result["settings"] == {"model.kernel_size": str(kernel)}
        assert result["kimg"] == 0.112 and result["threads"] >= 1 and result["images_per_s"] > 0
        assert result["metrics"]["spectral-distance"] > 0
        run_dir = row_run_dir(finished / row)
        assert run_dir == finished / row / "00000-digits-dcgan"
        assert f"kernel_size: {kernel}" in (run_dir / "config.yaml").read_text()
        assert _commands(finished, row)[0].startswith("$ deconvgan train ")
        assert "--threads" in _commands(finished, row)[0] and "evaluate" in _commands(finished, row)[1]
    # the cost is counted on the row's own model: a 3x3 kernel has fewer weights and FLOPs than 4x4
    small, large = _result(finished, ROWS[0]), _result(finished, ROWS[1])
    assert small["g_params"] < large["g_params"] and small["g_gflop_per_image"] < large["g_gflop_per_image"]


def test_report_is_recomputed_from_the_rows(finished: Path) -> None:
    with open(finished / RESULTS_CSV, newline="") as f:
        lines = list(csv.DictReader(f))
    assert list(lines[0])[:4] == ["row", "combination", "model.kernel_size", "seed"]
    for key in ("g_params", "d_params", "g_gflop_per_image", "images_per_s", "train_wall_s", "spectral-distance"):
        assert key in lines[0]
    assert [line["row"] for line in lines] == list(ROWS)
    for line in lines:
        result = _result(finished, line["row"])
        assert float(line["spectral-distance"]) == result["metrics"]["spectral-distance"]
        assert int(line["g_params"]) == result["g_params"] and float(line["kimg"]) == result["kimg"]
    md = (finished / "report.md").read_text()
    assert f"| 3 | 1 | {_result(finished, ROWS[0])['metrics']['spectral-distance']:.4g}" in md
    assert "plots/curves.png" in md and (finished / "plots" / "cost.png").is_file()


def test_html_report_is_self_contained(finished: Path) -> None:
    page = (finished / "report.html").read_text()
    assert "http://" not in page and "https://" not in page and "<script" not in page
    sources = re.findall(r'src="([^"]*)"', page)
    assert len(sources) == 4  # two plots and two sample grids
    for source in sources:
        assert source.startswith("data:image/png;base64,")
        assert base64.b64decode(source.split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"


def test_resume_reruns_only_unfinished_rows(sweep_copy: Path, capsys) -> None:
    kept = sweep_copy / ROWS[1] / ROW_RESULT
    kept_bytes, kept_log = kept.read_bytes(), _commands(sweep_copy, ROWS[1])
    (sweep_copy / ROWS[0] / ROW_RESULT).unlink()
    assert main(["sweep", "--resume", str(sweep_copy)]) == 0
    out = capsys.readouterr().out
    assert "1 of 2 rows already finished; running 1" in out and ROWS[1] not in out
    assert kept.read_bytes() == kept_bytes and _commands(sweep_copy, ROWS[1]) == kept_log  # not touched
    # the finished training is only closed (resumed at its last step), then evaluated again
    commands = _commands(sweep_copy, ROWS[0])
    assert len(commands) == 4 and "train --resume" in commands[2] and "evaluate" in commands[3]
    assert _result(sweep_copy, ROWS[0])["kimg"] == 0.112 and row_status(sweep_copy / ROWS[0]) == "done"


def test_an_interrupted_row_resumes_from_its_training_state(sweep_copy: Path) -> None:
    row_dir = sweep_copy / ROWS[1]
    shutil.rmtree(row_run_dir(row_dir))
    (row_dir / ROW_RESULT).unlink()
    plan = load_plan(sweep_copy)
    row = plan.rows()[1]
    cfg = plan.config_of(row.seed, row.overrides)  # exactly what the sweep trains, stopped after step 3
    partial = train(dataclasses.replace(cfg, run=dataclasses.replace(cfg.run, runs_dir=str(row_dir))), until_step=3)
    assert partial.step == 3 and (partial.run_dir / STATE_FILE).is_file() and row_status(row_dir) == "partial"
    assert main(["sweep", "--resume", str(sweep_copy), "--jobs", "1"]) == 0
    assert row_run_dir(row_dir) == partial.run_dir  # the same run, continued
    assert "train --resume" in _commands(sweep_copy, ROWS[1])[-2]
    log = (partial.run_dir / "log.txt").read_text()
    assert f"resuming {partial.run_dir} at step 3/7" in log
    steps = [json.loads(line)["step"] for line in (partial.run_dir / STATS_FILE).read_text().splitlines()]
    assert steps == list(range(1, 8))  # steps 1-3 from the first session, 4-7 from the resumed one
    assert _result(sweep_copy, ROWS[1])["kimg"] == 0.112


def test_a_stop_signal_saves_the_rows_and_ends_the_sweep(tmp_path: Path) -> None:
    long = [a if a != "0.112" else "40" for a in SWEEP] + ["--sweeps-dir", str(tmp_path)]
    child = subprocess.Popen([sys.executable, "-m", "deconvgan", *long[:long.index("--jobs")], "--jobs", "1",
                              *long[long.index("--jobs") + 2:]], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    stats = tmp_path / "00000-tiny" / ROWS[0] / "00000-digits-dcgan" / STATS_FILE
    deadline = time.monotonic() + 60
    while not (stats.is_file() and stats.read_text().count("\n") >= 2):  # training is under way
        assert time.monotonic() < deadline and child.poll() is None, child.communicate()
        time.sleep(0.1)
    child.send_signal(signal.SIGTERM)  # to the sweep alone: it passes the signal on to its child
    out, err = child.communicate(timeout=60)
    assert child.returncode == 128 + signal.SIGTERM, err
    assert b"continue with  deconvgan sweep --resume" in out
    row_dir = tmp_path / "00000-tiny" / ROWS[0]
    assert row_status(row_dir) == "partial" and not (tmp_path / "00000-tiny" / ROWS[1]).exists()
    assert "SIGTERM at step" in (row_run_dir(row_dir) / "log.txt").read_text()
