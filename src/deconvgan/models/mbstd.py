"""Minibatch standard deviation (Karras et al. 2018, "Progressive Growing of GANs", section 3).

A discriminator that sees one sample at a time cannot tell a collapsed generator (every sample
alike) from a diverse one. This layer gives it a batch statistic: the batch is split into groups
of ``G`` samples, the standard deviation of every feature over each group is averaged into one
number per group, and that number is appended as one extra constant feature map to every sample
of the group. A collapsed batch has a small value, which D can learn to penalise.
"""

from __future__ import annotations

import torch
from torch import nn

EPS = 1e-8  # inside the square root: keeps the gradient finite when a group's samples are equal


class MinibatchStdDev(nn.Module):
    """``[N, C, H, W] -> [N, C + 1, H, W]``: appends the mean within-group feature stddev as a map.

    The group size is ``min(group_size, N)`` and must divide ``N`` (ValueError otherwise). As in
    the reference implementation, groups are strided: group ``j`` holds samples ``j, j + M,
    j + 2M, ...`` with ``M = N / G``. The stddev is the biased one (divide by ``G``), per
    feature (channel and position), then averaged over ``C, H, W``. No parameters.
    """

    def __init__(self, group_size: int) -> None:
        super().__init__()
        if group_size < 1:
            raise ValueError(f"group_size={group_size} must be >= 1")
        self.group_size = group_size

    def extra_repr(self) -> str:
        return f"group_size={self.group_size}"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        group = min(self.group_size, n)
        if n % group:
            raise ValueError(
                f"minibatch stddev: a batch of {n} does not split into groups of {group} "
                "(model.d_mbstd): use a batch size divisible by it"
            )
        m = n // group
        y = x.reshape(group, m, c, h, w)  # [G, M, C, H, W]: y[g, j] = x[g * M + j], group j
        y = y - y.mean(dim=0)  # deviation from the group mean
        std = torch.sqrt(y.square().mean(dim=0) + EPS)  # [M, C, H, W]
        stat = std.mean(dim=(1, 2, 3))  # [M]: one number per group
        feature = stat.repeat(group).view(n, 1, 1, 1).expand(n, 1, h, w)  # sample i -> group i % M
        return torch.cat([x, feature.to(x.dtype)], dim=1)  # [N, C + 1, H, W]
