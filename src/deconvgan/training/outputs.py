"""What a training run writes into its directory: sample grids, snapshots, training states, the best snapshot.

Only rank 0 writes; every rank keeps the bookkeeping (the step of the last good training state, the
time-based state clock) so that all of them decide alike. Used by :func:`deconvgan.training.loop.train`.
"""

from __future__ import annotations

import copy
import math
import time
from pathlib import Path

import torch
from torch import nn

from deconvgan import checkpoint
from deconvgan import distributed as dist
from deconvgan.atomic import write_bytes
from deconvgan.config import Config
from deconvgan.images import display_scale, make_grid, save_gif, save_png, to_uint8
from deconvgan.runfiles import (
    BEST_SNAPSHOT_FILE,
    GRID_GLOB,
    PROGRESS_GIF,
    REALS_GRID,
    SAMPLES_DIR,
    SNAPSHOT_FILE,
    SNAPSHOTS_DIR,
    STATE_FILE,
    STEP_SNAPSHOT_GLOB,
    grid_name,
    step_snapshot_name,
)
from deconvgan.seeds import derive_seed, make_generator
from deconvgan.training.augment import AdaptiveP
from deconvgan.training.collapse import CollapseWatch
from deconvgan.training.ema import recalibrate_batchnorm
from deconvgan.training.evaluation import read_best, write_best
from deconvgan.training.guard import DivergenceGuard
from deconvgan.training.monitor import Monitor

RECALIBRATION_SAMPLES = 2048  # latents used to re-estimate batch-norm statistics for snapshots


class RunOutputs:
    """Sample grids, snapshots, training states and the best snapshot of one run directory (rank 0 writes)."""

    def __init__(self, run_dir: Path, cfg: Config, dataset_name: str, monitor: Monitor,
                 grid_latents: torch.Tensor, ranks: dist.DistInfo, guard: DivergenceGuard,
                 saved_step: int | None = None, *, adaptive: AdaptiveP | None = None,
                 class_names: tuple[str, ...] = ()) -> None:
        self.run_dir, self.cfg, self.dataset_name, self.monitor = run_dir, cfg, dataset_name, monitor
        self.adaptive, self.class_names = adaptive, class_names  # ADA's state; conditional models' class names
        self.grid_latents = grid_latents
        self.ranks, self.guard = ranks, guard
        self.enabled = ranks.is_main  # only rank 0 writes; the others skip every output
        self.world_size = ranks.world_size
        self.saved_step = saved_step  # the step of the last good training state on disk (None: none yet)
        self.collapse = CollapseWatch(cfg.train.batch_size)  # warnings from the logged statistics and the grids
        self._last_state_time = time.monotonic()
        best = read_best(run_dir) if self.enabled else None
        self.best_value = best["value"] if best is not None else math.inf
        if self.enabled:
            (run_dir / SAMPLES_DIR).mkdir(exist_ok=True)
            (run_dir / SNAPSHOTS_DIR).mkdir(exist_ok=True)

    def inference_copy(self, generator: nn.Module) -> nn.Module:
        # A single-process copy (no collective calls: only rank 0 runs this) in the standard format.
        local = dist.convert_local_batchnorm(copy.deepcopy(generator)).to(memory_format=torch.contiguous_format)
        gen = make_generator(derive_seed(self.cfg.train.seed, "recalibrate"), self.grid_latents.device)
        return recalibrate_batchnorm(local, self.cfg.model, num_samples=RECALIBRATION_SAMPLES,
                                     batch_size=256, gen=gen)

    @torch.no_grad()
    def grid(self, inference: nn.Module, step: int) -> None:
        if not self.enabled:
            return
        images = to_uint8(inference(self.grid_latents))
        warning = self.collapse.grid(step, images)
        if warning is not None:
            self.monitor.warning(step, "grid-collapsed", warning)
        grid = make_grid(images)
        save_png(grid, self.run_dir / SAMPLES_DIR / grid_name(step), scale=display_scale(images.shape[-1]))
        self.monitor.image("samples", grid, step)

    def reals(self, batch: torch.Tensor) -> None:
        """samples/reals.png: real images as D sees them (decoded, cropped, flipped), to check the data path."""
        if not self.enabled:
            return
        images = to_uint8(batch[: self.cfg.run.grid_size].float())
        save_png(make_grid(images), self.run_dir / SAMPLES_DIR / REALS_GRID, scale=display_scale(images.shape[-1]))

    def snapshot(self, inference: nn.Module, step: int) -> Path:
        if not self.enabled:
            return self.run_dir / SNAPSHOT_FILE
        path = self.run_dir / SNAPSHOTS_DIR / step_snapshot_name(step)
        checkpoint.save_snapshot(path, inference, self.cfg.model, step=step,
                                 kimg=step * self.cfg.train.batch_size / 1000, run_name=self.run_dir.name,
                                 dataset=self.dataset_name, class_names=self.class_names)
        write_bytes(self.run_dir / SNAPSHOT_FILE, path.read_bytes())
        if self.cfg.run.keep_snapshots is not None:  # long runs must not fill the disk (the best is kept apart)
            for old in sorted((self.run_dir / SNAPSHOTS_DIR).glob(STEP_SNAPSHOT_GLOB))[:-self.cfg.run.keep_snapshots]:
                old.unlink(missing_ok=True)
        return self.run_dir / SNAPSHOT_FILE

    def evaluation(self, values: dict[str, float] | None, key: str, inference: nn.Module, step: int) -> None:
        """Log the metric values; keep snapshot-best.safetensors when ``key`` improved (lower is better)."""
        if not self.enabled or values is None:
            return
        self.monitor.metrics(step, values)
        if values[key] < self.best_value:
            self.best_value = values[key]
            kimg = step * self.cfg.train.batch_size / 1000
            checkpoint.save_snapshot(self.run_dir / BEST_SNAPSHOT_FILE, inference, self.cfg.model, step=step,
                                     kimg=kimg, run_name=self.run_dir.name, dataset=self.dataset_name,
                                     class_names=self.class_names)
            write_best(self.run_dir, step, kimg, key, values[key])

    def state_due(self) -> bool:
        """True when ``run.state_every_minutes`` have passed since the last training state (rank 0's clock)."""
        minutes = self.cfg.run.state_every_minutes
        due = minutes is not None and time.monotonic() - self._last_state_time >= minutes * 60
        return bool(dist.broadcast_object(self.ranks, due))

    def state(self, step: int, wall_time_s: float, G: nn.Module, D: nn.Module,
              G_ema: nn.Module | None, opt_g: torch.optim.Optimizer, opt_d: torch.optim.Optimizer) -> None:
        # Every rank records the step (all of them may roll back to it); only rank 0 writes.
        self.saved_step, self._last_state_time = step, time.monotonic()
        if not self.enabled:
            return
        checkpoint.save_training_state(self.run_dir / STATE_FILE, checkpoint.TrainingState(
            config=self.cfg, step=step, wall_time_s=wall_time_s,
            generator=G.state_dict(), discriminator=D.state_dict(),
            generator_ema=G_ema.state_dict() if G_ema is not None else None,
            opt_g=opt_g.state_dict(), opt_d=opt_d.state_dict(), rng_cpu=torch.get_rng_state(),
            world_size=self.world_size, lr_scale=self.guard.lr_scale, rollbacks=self.guard.rollbacks_done,
            augment=self.adaptive.state_dict() if self.adaptive is not None and self.adaptive.adaptive else None,
        ))

    def progress_gif(self) -> None:
        if not self.enabled:
            return
        from PIL import Image

        frames = []
        for path in sorted((self.run_dir / SAMPLES_DIR).glob(GRID_GLOB)):
            with Image.open(path) as image:
                frames.append(image.convert("RGB"))
        if frames:
            save_gif(frames, self.run_dir / SAMPLES_DIR / PROGRESS_GIF, frame_ms=300)

