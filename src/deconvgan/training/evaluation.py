"""A metric every N kimg during training, with the best snapshot kept beside the latest.

GAN training often gets worse after its best point, so the loop evaluates ``run.metric`` at
intervals and keeps ``snapshot-best.safetensors`` (and ``best.json``) by it. Generation is
sharded: with N processes each generates its slice of the seeds 0..n-1 and rank 0 gathers them,
computes the metric against the real evaluation split (features of the real images computed
once) and returns the values; the other ranks return None.
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Any

import torch
import torch.distributed
from torch import nn

from deconvgan import distributed as dist
from deconvgan.atomic import write_text
from deconvgan.config import Config
from deconvgan.runfiles import BEST_FILE
from deconvgan.sampling import generate, labels_for_seeds, latents_for_seeds

# For each ``run.metric`` (the choice list is config.TRAINING_METRICS): the result key compared to keep the
# best snapshot (lower is better).
BEST_KEYS: dict[str, str] = {"fd-classifier": "fd-classifier", "fid": "fid", "kid": "kid",
                             "spectral": "spectral-distance", "mode-coverage": "modes-kl"}


class TrainingMetric:
    """Evaluates one metric of ``cfg.run.metric`` on the generator; rank 0 gets the numbers."""

    def __init__(self, cfg: Config, device: torch.device, ranks: dist.DistInfo) -> None:
        from deconvgan.metrics.evaluate import EvalContext, load_real_images, reference_split

        assert cfg.run.metric is not None
        self.name = cfg.run.metric
        self.key = BEST_KEYS[self.name]  # the value compared for "best" (lower is better)
        self.samples = cfg.run.metric_samples
        self.cfg, self.device, self.ranks = cfg, device, ranks
        self._context: EvalContext | None = None
        if ranks.is_main:
            split = reference_split(cfg.data.source)
            real, data_cfg, real_name = load_real_images(dataclasses.replace(cfg.data, split=split), cfg.model,
                                                         self.samples)
            self._context = EvalContext(real=real, fake=real[:0], data_cfg=data_cfg, real_name=real_name,
                                        model=cfg.model, num_generated=self.samples, device=device, progress=False)

    def __call__(self, generator: nn.Module) -> dict[str, float] | None:
        """Every rank calls this with the same (inference-mode) generator."""
        per_rank = math.ceil(self.samples / self.ranks.world_size)
        first = self.ranks.rank * per_rank
        seeds = list(range(first, first + per_rank))
        labels = labels_for_seeds(seeds, self.cfg.model.num_classes) if self.cfg.model.num_classes else None
        images = generate(generator, latents_for_seeds(seeds, self.cfg.model.latent_dim),
                          labels=labels).to(self.device)  # uint8 [per_rank, C, H, W]; seed s in class s mod K
        if self.ranks.enabled:
            gathered = [torch.empty_like(images) for _ in range(self.ranks.world_size)]
            torch.distributed.all_gather(gathered, images)
            images = torch.cat(gathered)
        if self._context is None:
            return None
        return self._context.score(images[:self.samples].cpu(), [self.name])


def read_best(run_dir: Path) -> dict[str, Any] | None:
    """The best evaluation recorded in a run directory, if any."""
    path = run_dir / BEST_FILE
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def write_best(run_dir: Path, step: int, kimg: float, key: str, value: float) -> None:
    """Record that the snapshot of ``step`` is the best so far by ``key``."""
    write_text(run_dir / BEST_FILE, json.dumps({"step": step, "kimg": kimg, "metric": key, "value": value}) + "\n")
