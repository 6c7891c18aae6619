"""The discriminator as one training step calls it: augmentation (if on), then D with the class labels.

A :class:`Judge` is made per step, holding that step's ``torch.Generator`` (augmentation draws), the
labels of the real and of the fake batch (conditional models), and the ADA probability. With
``augment.kind=none`` and an unconditional model, ``judge.real(x)`` is exactly ``D(x)``: no draw,
no extra op, so such runs are bit-identical to what the loop computed before augmentation existed.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from deconvgan.config import AugmentConfig
from deconvgan.training.augment import augment


@dataclass
class Judge:
    """D's view of one step. ``share`` is this rank's slice of the global batch of ``total`` images."""

    D: nn.Module
    gen: torch.Generator
    augment_cfg: AugmentConfig
    p: float = 1.0
    real_labels: Tensor | None = None  # [b] class ids of the real batch (conditional models)
    fake_labels: Tensor | None = None  # [b] the classes the fakes were drawn for
    total: int | None = None
    share: slice | None = None

    def _augment(self, x: Tensor) -> Tensor:
        if self.augment_cfg.kind == "none":
            return x
        return augment(x, self.gen, self.augment_cfg, self.p, total=self.total, share=self.share)

    def _call(self, x: Tensor, labels: Tensor | None) -> Tensor:
        return self.D(x) if labels is None else self.D(x, labels)

    def real(self, x: Tensor) -> Tensor:
        """Logits [b] of D on augmented real images ``x`` with their labels."""
        return self._call(self._augment(x), self.real_labels)

    def fake(self, x: Tensor) -> Tensor:
        """Logits [b] of D on augmented fakes with the classes they were drawn for (gradients flow to ``x``)."""
        return self._call(self._augment(x), self.fake_labels)

    def plain(self, x: Tensor) -> Tensor:
        """D on ``x`` as given, with the real labels: for the gradient penalty at real/fake interpolates."""
        return self._call(x, self.real_labels)
