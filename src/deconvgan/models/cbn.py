"""Conditional batch norm (de Vries et al. 2017; Miyato & Koyama 2018): a per-class scale and shift.

``y = gamma[c] * BN(x) + beta[c]`` where ``BN`` normalises without an affine map of its own (batch
statistics in training, running statistics in eval) and ``gamma``, ``beta`` are rows of two
``[num_classes, channels]`` tables picked by each sample's class ``c``. With one class it is an
ordinary affine BatchNorm.
"""

from __future__ import annotations

import torch
from torch import nn

from deconvgan.models.init import INIT_STD


class ConditionalBatchNorm2d(nn.Module):
    """``forward(x: [N, C, H, W], labels: [N] int64) -> [N, C, H, W]``.

    ``self.bn`` is the ``nn.BatchNorm2d(C, affine=False)`` holding the running statistics (so EMA,
    batch-norm recalibration and sync batch norm treat it like any other); ``self.weight`` and
    ``self.bias`` are the per-class ``[num_classes, C]`` scale and shift, initialised as DCGAN
    initialises a BatchNorm (scale ~ N(1, 0.02), shift 0) -- the same draws for every class.
    """

    def __init__(self, num_features: int, num_classes: int) -> None:
        super().__init__()
        if num_classes < 1:
            raise ValueError(f"num_classes={num_classes} must be >= 1")
        self.num_features, self.num_classes = num_features, num_classes
        self.bn = nn.BatchNorm2d(num_features, affine=False)
        self.weight = nn.Parameter(torch.empty(num_classes, num_features))
        self.bias = nn.Parameter(torch.zeros(num_classes, num_features))
        with torch.no_grad():  # one draw shared by all classes: every class starts from the same map
            self.weight.copy_(torch.empty(num_features).normal_(1.0, INIT_STD).expand(num_classes, -1))

    def forward(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        gamma = self.weight[labels][:, :, None, None]  # [N, C, 1, 1]
        beta = self.bias[labels][:, :, None, None]
        return self.bn(x) * gamma + beta
