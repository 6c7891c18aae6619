"""Fréchet distance between Gaussians fitted to two feature sets (FID when the features are Inception's).

Heusel et al. (2017)::

    d^2 = |mu1 - mu2|^2 + Tr(sigma1) + Tr(sigma2) - 2 Tr((sigma1 sigma2)^(1/2))

Everything is computed in float64: the three traces are large and nearly cancel for close sets,
so float32 loses most of the digits of a small FID.

**Trace of the square root, by eigenvalues** (not ``scipy.linalg.sqrtm``):
``sigma1 @ sigma2`` is similar to the symmetric PSD matrix ``sigma1^(1/2) sigma2 sigma1^(1/2)``,
so in exact arithmetic its eigenvalues are real and >= 0, and ``Tr((sigma1 sigma2)^(1/2))`` is
the sum of their square roots. We take ``torch.linalg.eigvals`` of the product, keep the real
part and clamp at 0 (round-off leaves tiny imaginary parts and tiny negative eigenvalues of
singular covariances) before the square root. Why this rather than ``sqrtm``: it needs only the
eigenvalues, not the matrix root; it has no failure mode on singular covariances (fewer samples
than dimensions, common for small evaluation sets), where ``sqrtm`` returns complex or inaccurate
roots and pytorch-fid has to retry with ``eps * I`` added; it is one LAPACK call in torch, with no
scipy dependency (scipy is not a dependency of this package); and it is what
``torchmetrics.image.fid`` computes, so the two agree to round-off (tested).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

CHUNK = 4096  # rows per float64 block when accumulating the covariance


def feature_statistics(features: Tensor) -> tuple[Tensor, Tensor]:
    """Mean and unbiased covariance of ``features`` ``[N, D]`` -> ``(mu [D], sigma [D, D])``, float64.

    ``sigma = sum_i (x_i - mu)(x_i - mu)^T / (N - 1)``, accumulated in float64 blocks of rows
    around the exact mean (two passes: no ``E[xx^T] - mu mu^T`` cancellation, and no float64 copy
    of the whole set: 50k x 2048 Inception features stay in their own dtype). N >= 2.
    """
    if features.dim() != 2:
        raise ValueError(f"features must be [N, D], got shape {tuple(features.shape)}")
    n, d = features.shape
    if n < 2:
        raise ValueError(f"need at least 2 feature vectors for a covariance, got {n}")
    features = features.detach().cpu()
    mu = torch.zeros(d, dtype=torch.float64)
    for block in features.split(CHUNK):
        mu += block.to(torch.float64).sum(dim=0)
    mu /= n
    sigma = torch.zeros(d, d, dtype=torch.float64)
    for block in features.split(CHUNK):
        centred = block.to(torch.float64) - mu  # [b, D]
        sigma += centred.T @ centred
    sigma /= n - 1
    if not (torch.isfinite(mu).all() and torch.isfinite(sigma).all()):
        raise ValueError("features contain NaN or infinite values")
    return mu, sigma


def _as_float64(value: Tensor | np.ndarray) -> Tensor:
    return torch.as_tensor(value).detach().cpu().to(torch.float64)


def trace_sqrt_product(sigma1: Tensor, sigma2: Tensor) -> Tensor:
    """``Tr((sigma1 @ sigma2)^(1/2))`` for symmetric PSD ``[D, D]`` float64 matrices (see the module doc)."""
    eigenvalues = torch.linalg.eigvals(sigma1 @ sigma2)  # complex [D]
    return eigenvalues.real.clamp_min(0).sqrt().sum()


def frechet_distance(
    mu1: Tensor | np.ndarray, sigma1: Tensor | np.ndarray, mu2: Tensor | np.ndarray, sigma2: Tensor | np.ndarray
) -> float:
    """Squared Fréchet distance between ``N(mu1, sigma1)`` and ``N(mu2, sigma2)`` (the FID value).

    ``mu``: ``[D]``; ``sigma``: ``[D, D]`` symmetric PSD, e.g. from :func:`feature_statistics`.
    Tensors or numpy arrays; computed in float64. The result is clamped at 0: it is a squared
    distance, and identical statistics can leave a round-off residue of either sign.
    """
    mu1, mu2 = _as_float64(mu1), _as_float64(mu2)
    sigma1, sigma2 = _as_float64(sigma1), _as_float64(sigma2)
    if mu1.dim() != 1 or mu1.shape != mu2.shape:
        raise ValueError(f"means must be [D] of the same D, got {tuple(mu1.shape)} and {tuple(mu2.shape)}")
    d = mu1.shape[0]
    for name, sigma in (("sigma1", sigma1), ("sigma2", sigma2)):
        if sigma.shape != (d, d):
            raise ValueError(f"{name} must be [{d}, {d}] to match the means, got {tuple(sigma.shape)}")
    if not all(torch.isfinite(t).all() for t in (mu1, mu2, sigma1, sigma2)):
        raise ValueError("statistics contain NaN or infinite values")
    mean_term = (mu1 - mu2).square().sum()
    value = mean_term + sigma1.trace() + sigma2.trace() - 2 * trace_sqrt_product(sigma1, sigma2)
    return max(0.0, float(value))
