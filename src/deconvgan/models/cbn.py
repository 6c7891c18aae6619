"""Conditional batch norm (de Vries et al. 2017; Miyato & Koyama 2018): a per-class scale and shift.

``y = gamma[c] * BN(x) + beta[c]`` where ``BN`` normalises without an affine map of its own (batch
statistics in training, running statistics in eval) and ``gamma``, ``beta`` are rows of two
``[num_classes, channels]`` tables picked by each sample's class ``c``. With one class it is an
ordinary affine BatchNorm.

Two helpers make any generator whose layers live in an ``nn.Sequential`` conditional:
:func:`make_conditional` swaps its BatchNorms for conditional ones, :func:`run_with_labels` runs it
passing the labels to them (both conditional generators in :mod:`deconvgan.models.conditional` use them).
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
        """``labels``: int64 ``[N]`` class ids, or float ``[N, num_classes]`` class weights (a blend of
        classes' scales and shifts, e.g. one-hot rows mixed to interpolate between classes)."""
        if labels.is_floating_point():  # [N, K] @ [K, C]: the weighted mix of the classes' rows
            gamma, beta = labels @ self.weight, labels @ self.bias
        else:
            gamma, beta = self.weight[labels], self.bias[labels]
        return self.bn(x) * gamma[:, :, None, None] + beta[:, :, None, None]  # [N, C, 1, 1] broadcast


def make_conditional(net: nn.Sequential, num_classes: int) -> None:
    """Replace every ``nn.BatchNorm2d`` child of ``net`` (in order, same name) by a
    :class:`ConditionalBatchNorm2d` of ``num_classes`` classes. Each draws its initial scale from
    torch's global RNG, so a seeded build stays reproducible."""
    for name, module in list(net.named_children()):
        if isinstance(module, nn.BatchNorm2d):
            setattr(net, name, ConditionalBatchNorm2d(module.num_features, num_classes))


def run_with_labels(net: nn.Sequential, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """``net(x)`` with ``labels`` ([N] int64) passed to each :class:`ConditionalBatchNorm2d` child."""
    for module in net:
        x = module(x, labels) if isinstance(module, ConditionalBatchNorm2d) else module(x)
    return x
