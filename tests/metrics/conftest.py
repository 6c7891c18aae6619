"""Helpers shared by the metric tests: a feature 'extractor' for torchmetrics, independent reference metrics."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

# torchmetrics warns on construction that KID keeps every feature in memory.
KID_BUFFER_WARNING = "ignore:Metric `Kernel Inception Distance` will save all extracted features:UserWarning"


class FeatureLookup(nn.Module):
    """A stand-in feature extractor for torchmetrics: maps an index tensor to rows of a fixed table."""

    def __init__(self, table: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("table", table)
        self.num_features = table.shape[1]  # torchmetrics reads this instead of probing with an image

    def forward(self, index: torch.Tensor) -> torch.Tensor:
        return self.table[index]


def reference_frechet(real: torch.Tensor, fake: torch.Tensor) -> float:
    """FID written out with numpy alone: np.cov, and Tr((s1 s2)^1/2) via the symmetric s1^1/2 s2 s1^1/2."""
    a, b = real.double().numpy(), fake.double().numpy()
    mu1, mu2 = a.mean(axis=0), b.mean(axis=0)
    s1, s2 = np.atleast_2d(np.cov(a, rowvar=False)), np.atleast_2d(np.cov(b, rowvar=False))
    values, vectors = np.linalg.eigh(s1)
    root1 = vectors @ np.diag(np.sqrt(np.clip(values, 0, None))) @ vectors.T
    trace_sqrt = np.sqrt(np.clip(np.linalg.eigvalsh(root1 @ s2 @ root1), 0, None)).sum()
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * trace_sqrt)


def reference_prdc(real: torch.Tensor, fake: torch.Tensor, k_pr: int = 3, k_dc: int = 5) -> dict[str, float]:
    """Precision/recall (closed balls) and density/coverage (open balls) by brute force: all pairwise
    distances with numpy, radii from a full sort (the papers' reference code, as loops)."""
    a, b = real.double().numpy(), fake.double().numpy()

    def pairwise(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return np.sqrt(((x[:, None, :] - y[None, :, :]) ** 2).sum(axis=-1))

    def radii(x: np.ndarray, k: int) -> np.ndarray:
        return np.sort(pairwise(x, x), axis=1)[:, k]  # column 0 is the point itself (distance 0)

    rf = pairwise(a, b)  # [N real, M fake]
    r_pr, f_pr, r_dc = radii(a, k_pr), radii(b, k_pr), radii(a, k_dc)
    return {
        "precision": float((rf <= r_pr[:, None]).any(axis=0).mean()),
        "recall": float((rf <= f_pr[None, :]).any(axis=1).mean()),
        "density": float((rf < r_dc[:, None]).sum() / (k_dc * b.shape[0])),
        "coverage": float((rf.min(axis=1) < r_dc).mean()),
    }


def torchmetrics_kid(real: torch.Tensor, fake: torch.Tensor, subsets: int, subset_size: int,
                     seed: int) -> tuple[float, float]:
    """(mean, std) of torchmetrics' KernelInceptionDistance on these features, its subsets drawn after
    ``torch.manual_seed(seed)`` (the global RNG is restored afterwards). Skips without torchmetrics."""
    kid_module = pytest.importorskip("torchmetrics.image.kid")
    metric = kid_module.KernelInceptionDistance(
        feature=FeatureLookup(torch.cat([real, fake])), subsets=subsets, subset_size=subset_size
    )
    metric.update(torch.arange(len(real)), real=True)
    metric.update(torch.arange(len(real), len(real) + len(fake)), real=False)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)  # torchmetrics draws its subsets from the global RNG
        mean, std = metric.compute()
    return float(mean), float(std)
