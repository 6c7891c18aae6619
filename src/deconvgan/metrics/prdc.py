"""k-nearest-neighbour fidelity and diversity metrics on feature sets.

* Precision and recall (Kynkäänniemi et al. 2019, "Improved Precision and Recall Metric for
  Assessing Generative Models"): each set's manifold is the union of balls around its points, of
  radius the distance to the point's k-th nearest neighbour in its own set. Precision is the
  fraction of fake points inside the real manifold (fidelity); recall the fraction of real
  points inside the fake manifold (diversity).
* Density and coverage (Naeem et al. 2020, "Reliable Fidelity and Diversity Metrics for
  Generative Models"): only the real balls are used, which makes them robust to fake outliers.
  Density counts how many real balls contain each fake point, divided by k (~1 when the two sets
  are independent samples of one distribution; it can exceed 1); coverage is the fraction of real
  balls that contain at least one fake point.

Ball membership follows each paper's reference code, so values compare with published ones:
closed balls (``distance <= radius``) for precision and recall, open balls (``distance < radius``)
for density and coverage. They differ only on ties -- but a ball's own k-th neighbour lies
exactly on its boundary, so for the very same points as both sets, density is exactly 1 (each
open ball holds its centre and k - 1 neighbours) while precision and recall are 1 either way.
Round-off must not decide those ties (``d(a, b)`` and ``d(b, a)`` may differ in the last bit), so
comparisons within ``RADIUS_RTOL`` of the radius count as ties. A point is not its own neighbour:
the radius excludes it by index, and duplicates count as neighbours at distance 0.

Distances are Euclidean, computed in float64 over blocks of rows, so the largest temporary is
``BLOCK_ELEMENTS`` distances (64 MiB): 10k x 10k sets fit in little memory. Each block is
``|a|^2 + |b|^2 - 2 a.b`` by one matrix product (what ``torch.cdist`` does for large inputs), with
squared distances below ``TIE_TOLERANCE * (|a|^2 + |b|^2)`` -- the round-off of that formula --
set to exactly 0, so that identical vectors are at distance 0 and duplicates stay in their balls.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch import Tensor

BLOCK_ELEMENTS = 1 << 23  # distances per block: 8M float64 = 64 MiB
TIE_TOLERANCE = 1e-10  # relative: squared distances this small are round-off of equal vectors
RADIUS_RTOL = 1e-9  # relative: distances this close to a radius are ties (on the ball's boundary)


@dataclass(frozen=True)
class PrecisionRecall:
    """Kynkäänniemi et al. (2019): both in [0, 1]."""

    precision: float  # fraction of fake points inside the real k-NN manifold (fidelity)
    recall: float  # fraction of real points inside the fake k-NN manifold (diversity)


@dataclass(frozen=True)
class DensityCoverage:
    """Naeem et al. (2020): density >= 0 (~1 for matching distributions, may exceed 1), coverage in [0, 1]."""

    density: float  # mean number of real balls containing a fake point, / k
    coverage: float  # fraction of real balls containing at least one fake point


def _check(real: Tensor, fake: Tensor, k: int) -> tuple[Tensor, Tensor]:
    if real.dim() != 2 or fake.dim() != 2 or real.shape[1] != fake.shape[1]:
        raise ValueError(
            f"features must be [N, D] and [M, D] with the same D, got {tuple(real.shape)} and {tuple(fake.shape)}"
        )
    if k < 1:
        raise ValueError(f"k={k} must be >= 1")
    if fake.shape[0] == 0:
        raise ValueError("the fake feature set is empty")
    real64, fake64 = real.detach().cpu().to(torch.float64), fake.detach().cpu().to(torch.float64)
    if not (torch.isfinite(real64).all() and torch.isfinite(fake64).all()):
        raise ValueError("features contain NaN or infinite values")
    return real64, fake64


def _distance_blocks(a: Tensor, b: Tensor) -> Iterator[tuple[int, Tensor]]:
    """``(start, distances(a[start:start + rows], b))`` blocks: ``[rows, len(b)]`` float64 each."""
    rows = max(1, BLOCK_ELEMENTS // max(1, b.shape[0]))
    b_sq = b.square().sum(dim=1)  # [len(b)]
    for start in range(0, a.shape[0], rows):
        block = a[start:start + rows]
        norms = block.square().sum(dim=1)[:, None] + b_sq[None, :]  # [rows, len(b)]
        d2 = torch.addmm(norms, block, b.T, alpha=-2)  # |a|^2 + |b|^2 - 2 a.b
        d2[d2 <= TIE_TOLERANCE * norms] = 0  # round-off of (nearly) equal vectors, and negatives
        yield start, d2.sqrt_()


def _inside(dist: Tensor, radii: Tensor, *, closed: bool) -> Tensor:
    """``dist <= radii`` (closed) or ``dist < radii`` (open), ties taken within ``RADIUS_RTOL``."""
    if closed:
        return dist <= radii * (1 + RADIUS_RTOL)
    return dist < radii * (1 - RADIUS_RTOL)


def knn_radii(features: Tensor, k: int) -> Tensor:
    """Distance from each point to its k-th nearest *other* point of the set: float64 ``[N]``.

    Needs ``N > k``. Duplicated points count as neighbours at distance 0.
    """
    n = features.shape[0]
    if n <= k:
        raise ValueError(f"a set of {n} feature vectors has no {k}-th nearest neighbour: need more than k={k}")
    features = features.to(torch.float64)
    radii = torch.empty(n, dtype=torch.float64)
    for start, dist in _distance_blocks(features, features):
        rows = torch.arange(dist.shape[0])
        dist[rows, start + rows] = torch.inf  # exclude each point itself, by index not by value
        radii[start:start + dist.shape[0]] = dist.topk(k, dim=1, largest=False).values[:, -1]
    return radii


def precision_recall(real: Tensor, fake: Tensor, k: int = 3) -> PrecisionRecall:
    """Improved precision and recall of ``fake`` ``[M, D]`` against ``real`` ``[N, D]`` features.

    ``precision = mean_j 1[exists i: |f_j - r_i| <= NND_k(r_i)]`` and
    ``recall = mean_i 1[exists j: |r_i - f_j| <= NND_k(f_j)]``, with ``NND_k`` the distance to the
    k-th nearest neighbour within the point's own set (see the module doc). Needs N, M > k.
    """
    real, fake = _check(real, fake, k)
    real_radii, fake_radii = knn_radii(real, k), knn_radii(fake, k)
    fake_inside = 0
    real_inside = torch.zeros(real.shape[0], dtype=torch.bool)
    for start, dist in _distance_blocks(fake, real):  # dist: [rows of fake, N]
        fake_inside += int(_inside(dist, real_radii[None, :], closed=True).any(dim=1).sum())
        block_radii = fake_radii[start:start + dist.shape[0], None]  # [rows, 1]
        real_inside |= _inside(dist, block_radii, closed=True).any(dim=0)
    return PrecisionRecall(precision=fake_inside / fake.shape[0], recall=float(real_inside.double().mean()))


def density_coverage(real: Tensor, fake: Tensor, k: int = 5) -> DensityCoverage:
    """Density and coverage of ``fake`` ``[M, D]`` against ``real`` ``[N, D]`` features (Naeem et al. 2020).

    ``density = 1/(k M) sum_j sum_i 1[|f_j - r_i| < NND_k(r_i)]`` and
    ``coverage = mean_i 1[min_j |r_i - f_j| < NND_k(r_i)]`` (open balls). Needs N > k.
    For the very same points as both sets, density and coverage are exactly 1 (no distance ties).
    """
    real, fake = _check(real, fake, k)
    real_radii = knn_radii(real, k)
    memberships = 0
    nearest_fake = torch.full((real.shape[0],), torch.inf, dtype=torch.float64)
    for _, dist in _distance_blocks(fake, real):  # dist: [rows of fake, N]
        memberships += int(_inside(dist, real_radii[None, :], closed=False).sum())
        nearest_fake = torch.minimum(nearest_fake, dist.min(dim=0).values)
    return DensityCoverage(
        density=memberships / (k * fake.shape[0]),
        coverage=float(_inside(nearest_fake, real_radii, closed=False).double().mean()),
    )
