"""Kernel Inception Distance (Binkowski, Sutherland, Arbel & Gretton 2018, "Demystifying MMD GANs").

KID is the squared maximum mean discrepancy between the two feature distributions under the
cubic polynomial kernel ``k(x, y) = (x . y / d + 1)^3`` (``d`` = feature dimension), estimated
without bias. Unlike FID it has an unbiased estimator, so values from different sample sizes are
comparable and it can be slightly negative when the sets match. It is averaged over ``subsets``
random subsets of ``subset_size`` vectors from each set (drawn without replacement within a
subset, independently per subset), which bounds the cost at ``O(subsets * m^2 * d)``.
"""

from __future__ import annotations

import torch
from torch import Tensor

DEFAULT_SEED = 0  # the subset draws when no generator is given: results are reproducible by default


def polynomial_kernel(x: Tensor, y: Tensor) -> Tensor:
    """``(x @ y.T / d + 1)^3``: ``[m, d] x [n, d] -> [m, n]``."""
    return (x @ y.T / x.shape[1] + 1) ** 3


def mmd2_unbiased(x: Tensor, y: Tensor) -> Tensor:
    """Unbiased MMD^2 estimate with the cubic polynomial kernel for two samples of ``m`` vectors each.

    ``MMD^2 = sum_{i != j} k(x_i, x_j) / (m (m-1)) + sum_{i != j} k(y_i, y_j) / (m (m-1))
    - 2 sum_{i, j} k(x_i, y_j) / m^2``: the diagonal terms ``k(x_i, x_i)`` are left out because a
    vector is not an independent draw from its own distribution; every cross pair is independent.
    """
    m = x.shape[0]
    k_xx, k_yy, k_xy = polynomial_kernel(x, x), polynomial_kernel(y, y), polynomial_kernel(x, y)
    within = (k_xx.sum() - k_xx.diagonal().sum() + k_yy.sum() - k_yy.diagonal().sum()) / (m * (m - 1))
    return within - 2 * k_xy.sum() / (m * m)


def kernel_inception_distance(
    real: Tensor,
    fake: Tensor,
    *,
    subsets: int = 100,
    subset_size: int = 1000,
    generator: torch.Generator | None = None,
) -> tuple[float, float]:
    """KID between feature sets ``real`` ``[N, D]`` and ``fake`` ``[M, D]`` -> ``(mean, std)`` over subsets.

    Each of the ``subsets`` rounds draws ``randperm(N)[:subset_size]`` of the real vectors, then
    ``randperm(M)[:subset_size]`` of the fake ones, from ``generator`` (a CPU ``torch.Generator``;
    None: one seeded with 0, so the result is reproducible and does not touch the global RNG), and
    takes :func:`mmd2_unbiased` in float64. ``std`` is the population standard deviation of the
    per-subset estimates (ddof=0, as the reference implementation and torchmetrics report it) --
    the spread of one subset's estimate, not the standard error of the mean.
    ``subset_size`` must be in ``2..min(N, M)``. Cost: ``3 * subsets * subset_size^2 * D``
    multiply-adds (100 x 1000 x 2048 -> ~6e11, a minute or so on a few CPU cores).
    """
    if real.dim() != 2 or fake.dim() != 2 or real.shape[1] != fake.shape[1]:
        raise ValueError(
            f"features must be [N, D] and [M, D] with the same D, got {tuple(real.shape)} and {tuple(fake.shape)}"
        )
    if subsets < 1:
        raise ValueError(f"subsets={subsets} must be >= 1")
    n_real, n_fake = real.shape[0], fake.shape[0]
    if not 2 <= subset_size <= min(n_real, n_fake):
        raise ValueError(
            f"subset_size={subset_size} must be in 2..{min(n_real, n_fake)} "
            f"(the smaller of the {n_real} real and {n_fake} fake feature sets)"
        )
    if generator is None:
        generator = torch.Generator().manual_seed(DEFAULT_SEED)
    real, fake = real.detach().cpu(), fake.detach().cpu()
    estimates = torch.empty(subsets, dtype=torch.float64)
    for s in range(subsets):
        # The draw order (real, then fake, per subset) matches torchmetrics' KernelInceptionDistance,
        # so the same seed selects the same subsets there (which the tests use to compare).
        real_idx = torch.randperm(n_real, generator=generator)[:subset_size]
        fake_idx = torch.randperm(n_fake, generator=generator)[:subset_size]
        estimates[s] = mmd2_unbiased(real[real_idx].to(torch.float64), fake[fake_idx].to(torch.float64))
    if not torch.isfinite(estimates).all():
        raise ValueError("features contain NaN or infinite values")
    return float(estimates.mean()), float(estimates.std(correction=0))
