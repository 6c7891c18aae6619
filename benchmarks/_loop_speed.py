"""Images/s of deconvgan's own training loop, timed in this process (shared by the speed benchmarks).

A timed run logs every step (each stats.jsonl line is one step's images/s, with side work kept out
of the clock), draws no grids and writes no snapshots until its end, and runs one step more than
asked: the first step is warm-up and is left out.
"""

from __future__ import annotations

import json
import statistics
import tempfile
from pathlib import Path

import torch

from deconvgan.config import Config
from deconvgan.configio import load_config
from deconvgan.data import ImageDataset
from deconvgan.runfiles import STATS_FILE
from deconvgan.training import train


def timed_config(preset: str | None, overrides: list[str], steps: int) -> Config:
    """``preset`` (None: the defaults) with ``overrides``, set up to time ``steps`` steps after a warm-up step."""
    batch = load_config(preset, overrides).train.batch_size
    return load_config(preset, [
        *overrides, f"train.phases=[{{steps: {steps + 1}}}]", "run.progress=false", "run.tensorboard=false",
        f"run.log_every_kimg={batch / 1000}", "run.sample_every_kimg=1e9", "run.snapshot_every_kimg=1e9",
        "run.grid_size=1",
    ])


def run_timed(cfg: Config, images: torch.Tensor, run_dir: Path) -> Path:
    """Train ``cfg`` on the in-memory uint8 ``images`` into ``run_dir``; returns the run directory."""
    return train(cfg, run_dir=run_dir, dataset=ImageDataset(images, None, "bench", None)).run_dir


def loop_step_seconds(cfg: Config, images: torch.Tensor) -> list[float]:
    """Wall seconds of each step of a :func:`timed_config` run, the warm-up step left out.

    Read back from the per-step stats.jsonl lines (batch / images_per_s): each covers the step and
    its bookkeeping (moving average, logging), not the final snapshot and grid.
    """
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = run_timed(cfg, images, Path(tmp) / "run")
        lines = (run_dir / STATS_FILE).read_text().splitlines()
    return [cfg.train.batch_size / json.loads(line)["images_per_s"] for line in lines[1:]]


def loop_images_per_s(cfg: Config, images: torch.Tensor) -> float:
    """Median images/s over the per-step intervals of a :func:`timed_config` run, the warm-up step left out."""
    return statistics.median(cfg.train.batch_size / s for s in loop_step_seconds(cfg, images))
