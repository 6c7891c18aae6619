"""What a run reports while it trains: ``stats.jsonl``, ``log.txt``, TensorBoard and a progress bar.

Scalars are accumulated as tensors on the training device and turned into Python numbers only
once per logging interval, so the loop never waits on the device each step.
"""

from __future__ import annotations

import contextlib
import json
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from deconvgan.atomic import write_text
from deconvgan.runfiles import LOG_FILE, STATS_FILE, TENSORBOARD_DIR


class ScalarMeans:
    """Running sums of scalar tensors, averaged and reset by :meth:`pop`."""

    def __init__(self) -> None:
        self._sums: dict[str, torch.Tensor] = {}
        self._counts: dict[str, int] = {}

    def add(self, name: str, value: torch.Tensor) -> None:
        value = value.detach().float()
        if name in self._sums:
            self._sums[name] += value
        else:
            self._sums[name] = value.clone()
        self._counts[name] = self._counts.get(name, 0) + 1

    def pop(self, reduce: Callable[[torch.Tensor], torch.Tensor] | None = None) -> dict[str, float]:
        """Means since the last call, as floats (the one device sync per interval).

        ``reduce`` maps the stacked means to their average over processes (every rank must call it).
        """
        if not self._sums:
            return {}
        names = list(self._sums)
        stacked = torch.stack([self._sums[n] / self._counts[n] for n in names])
        if reduce is not None:
            stacked = reduce(stacked)
        values = stacked.cpu().tolist()
        means = dict(zip(names, values, strict=True))
        self._sums.clear()
        self._counts.clear()
        return means


def _tensorboard_writer(run_dir: Path) -> Any | None:
    """A SummaryWriter when tensorboard is installed, else None (quietly)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tensorboard's own imports warn on some versions
            from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return SummaryWriter(log_dir=str(run_dir / TENSORBOARD_DIR))


class Monitor:
    """Writes the run's log, stats and TensorBoard events; drives the progress bar."""

    def __init__(
        self, run_dir: Path, *, total_steps: int, start_step: int, batch_size: int,
        progress: bool, tensorboard: bool, resumed: bool, enabled: bool = True,
    ) -> None:
        """``enabled=False`` (ranks other than 0) writes nothing and shows no progress bar."""
        self.enabled = enabled
        self.run_dir = run_dir
        self.batch_size = batch_size
        self._interval_start = time.perf_counter()
        self._interval_steps = 0
        if not enabled:
            return
        self._stats_path = run_dir / STATS_FILE
        if resumed:
            self._truncate_stats_after(start_step)
        with contextlib.ExitStack() as opened:  # if a later step fails, what was opened is closed again
            self._log = opened.enter_context(open(run_dir / LOG_FILE, "a", encoding="utf-8"))
            self._stats = opened.enter_context(open(self._stats_path, "a", encoding="utf-8"))
            self._tb = _tensorboard_writer(run_dir) if tensorboard else None
            self._bar = tqdm(total=total_steps, initial=start_step, unit="step", dynamic_ncols=True,
                             disable=not progress, smoothing=0.1)
            opened.pop_all()  # from here on close() owns them

    def _truncate_stats_after(self, step: int) -> None:
        # Lines written after the checkpoint we resume from describe steps that will be redone.
        if not self._stats_path.is_file():
            return
        kept = [line for line in self._stats_path.read_text(encoding="utf-8").splitlines()
                if line.strip() and json.loads(line).get("step", 0) <= step]
        write_text(self._stats_path, "".join(line + "\n" for line in kept))  # atomic: no half-written stats

    def info(self, message: str) -> None:
        """A timestamped line in log.txt, echoed above the progress bar."""
        if not self.enabled:
            return
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        self._log.write(f"{stamp} {message}\n")
        self._log.flush()
        tqdm.write(message)

    def warning(self, step: int, kind: str, message: str) -> None:
        """A ``warning: ...`` line in log.txt and ``{"step", "kimg", "warning", "message"}`` in stats.jsonl."""
        if not self.enabled:
            return
        record = {"step": step, "kimg": round(step * self.batch_size / 1000, 3), "warning": kind, "message": message}
        self._stats.write(json.dumps(record) + "\n")
        self._stats.flush()
        self.info(f"warning: {message}")

    def step_done(self) -> None:
        self._interval_steps += 1
        if self.enabled:
            self._bar.update(1)

    def pause_clock(self) -> float:
        """Time since the interval started; call before slow side work (grids, snapshots)."""
        return time.perf_counter() - self._interval_start

    def resume_clock(self, elapsed: float) -> None:
        """Continue the interval clock as if the side work had taken no time."""
        self._interval_start = time.perf_counter() - elapsed

    def log(self, step: int, phase: str, means: dict[str, float], wall_time_s: float) -> dict[str, Any]:
        """One stats.jsonl line (and TensorBoard scalars) for the interval that ends at ``step``."""
        elapsed = time.perf_counter() - self._interval_start
        images_per_s = self._interval_steps * self.batch_size / max(elapsed, 1e-9)
        record: dict[str, Any] = {
            "step": step,
            "kimg": round(step * self.batch_size / 1000, 3),
            "phase": phase,
            **{k: round(v, 6) for k, v in sorted(means.items())},
            "images_per_s": round(images_per_s, 2),
            "wall_time_s": round(wall_time_s, 2),
        }
        self._interval_start = time.perf_counter()
        self._interval_steps = 0
        if not self.enabled:
            return record
        self._stats.write(json.dumps(record) + "\n")
        self._stats.flush()
        if self._tb is not None:
            for key, value in means.items():
                self._tb.add_scalar(f"train/{key}", value, step)
            self._tb.add_scalar("speed/images_per_s", images_per_s, step)
        shown = {k: f"{means[k]:.3f}" for k in ("loss_d", "loss_g", "d_real", "d_fake") if k in means}
        self._bar.set_postfix(phase=phase, img_s=f"{images_per_s:.0f}", **shown, refresh=False)
        return record

    def metrics(self, step: int, values: dict[str, float]) -> None:
        """Evaluation results as their own stats.jsonl line ({"step", "kimg", "metrics": {...}})."""
        if not self.enabled:
            return
        record = {"step": step, "kimg": round(step * self.batch_size / 1000, 3),
                  "metrics": {k: round(v, 6) for k, v in values.items()}}
        self._stats.write(json.dumps(record) + "\n")
        self._stats.flush()
        if self._tb is not None:
            for key, value in values.items():
                self._tb.add_scalar(f"metrics/{key}", value, step)
        self.info(f"step {step}: " + ", ".join(f"{k} {v:.4g}" for k, v in values.items()))

    def image(self, tag: str, image_chw_uint8: torch.Tensor, step: int) -> None:
        """An image (uint8 [C, H, W]) into TensorBoard, if it is on."""
        if self.enabled and self._tb is not None:
            self._tb.add_image(tag, image_chw_uint8, step, dataformats="CHW")

    def close(self) -> None:
        """Close the log, stats and TensorBoard files and the progress bar; closing again does nothing."""
        if not self.enabled or self._stats.closed:
            return
        self._bar.close()
        self._stats.close()
        self._log.close()
        if self._tb is not None:
            self._tb.close()
