"""Kernel Inception Distance: the unbiased estimator, seeding, and agreement with torchmetrics."""

from __future__ import annotations

import pytest
import torch

from deconvgan.metrics import kernel_inception_distance
from deconvgan.metrics.kid import mmd2_unbiased

from .conftest import KID_BUFFER_WARNING, torchmetrics_kid


def features(seed: int, n: int, d: int = 16, shift: float = 0.0) -> torch.Tensor:
    return torch.randn(n, d, generator=torch.Generator().manual_seed(seed)) + shift


def brute_force_mmd2(x: torch.Tensor, y: torch.Tensor) -> float:
    """The unbiased estimator written out pair by pair, straight from Binkowski et al. (2018), eq. 3."""
    x, y = x.double().tolist(), y.double().tolist()
    d, m = len(x[0]), len(x)

    def k(a: list[float], b: list[float]) -> float:
        return (sum(p * q for p, q in zip(a, b, strict=True)) / d + 1) ** 3

    within = sum(k(x[i], x[j]) + k(y[i], y[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    return within - 2 * sum(k(x[i], y[j]) for i in range(m) for j in range(m)) / (m * m)


def test_single_whole_set_subset_is_the_unbiased_estimator() -> None:
    real, fake = features(0, 12, 5), features(1, 12, 5, shift=0.5)
    mean, std = kernel_inception_distance(real, fake, subsets=1, subset_size=12)
    assert mean == pytest.approx(brute_force_mmd2(real, fake), rel=1e-12)
    assert std == 0.0
    assert float(mmd2_unbiased(real.double(), fake.double())) == pytest.approx(mean, rel=1e-12)


def test_matching_sets_score_near_zero_and_shifted_sets_clearly_above() -> None:
    real = features(0, 600)
    same, shifted = features(1, 600), features(2, 600, shift=0.5)
    near, near_std = kernel_inception_distance(real, same, subsets=20, subset_size=200)
    far, _ = kernel_inception_distance(real, shifted, subsets=20, subset_size=200)
    assert abs(near) < 3 * near_std + 1e-3  # unbiased: can be negative, centred on 0
    assert far > 10 * max(abs(near), near_std)


def test_seeded_and_leaves_the_global_rng_alone() -> None:
    real, fake = features(0, 50), features(1, 60)
    state = torch.random.get_rng_state()
    first = kernel_inception_distance(real, fake, subsets=4, subset_size=20)
    assert torch.equal(torch.random.get_rng_state(), state)
    assert kernel_inception_distance(real, fake, subsets=4, subset_size=20) == first  # generator=None: seed 0
    same_seed = kernel_inception_distance(real, fake, subsets=4, subset_size=20,
                                          generator=torch.Generator().manual_seed(0))
    other_seed = kernel_inception_distance(real, fake, subsets=4, subset_size=20,
                                           generator=torch.Generator().manual_seed(1))
    assert same_seed == first and other_seed != first


@pytest.mark.parametrize(
    "real_shape,fake_shape,kwargs,match",
    [
        ((10, 4), (10, 5), {}, "same D"),
        ((10, 4), (8, 4), {"subset_size": 9}, "subset_size=9"),
        ((10, 4), (10, 4), {"subset_size": 1}, "subset_size=1"),
        ((10, 4), (10, 4), {"subset_size": 5, "subsets": 0}, "subsets=0"),
    ],
)
def test_refuses_bad_arguments(real_shape, fake_shape, kwargs, match) -> None:
    with pytest.raises(ValueError, match=match):
        kernel_inception_distance(torch.zeros(real_shape), torch.zeros(fake_shape), **kwargs)


@pytest.mark.filterwarnings(KID_BUFFER_WARNING)
def test_agrees_with_torchmetrics_on_the_same_subsets() -> None:
    # Both draw randperm(N) then randperm(M) per subset; a CPU Generator seeded s and the global
    # RNG seeded s give the same permutations, so the subsets are identical.
    real, fake = features(0, 120, d=32).double(), features(1, 90, d=32, shift=0.3).double()
    expected = torchmetrics_kid(real, fake, subsets=5, subset_size=50, seed=7)
    ours = kernel_inception_distance(real, fake, subsets=5, subset_size=50, generator=torch.Generator().manual_seed(7))
    assert ours == pytest.approx(expected, rel=1e-9)


@pytest.mark.filterwarnings(KID_BUFFER_WARNING)
def test_agrees_with_torchmetrics_on_the_whole_set() -> None:
    # One subset equal to the whole (equal-sized) sets: deterministic in both, whatever the draws.
    real, fake = features(2, 80, d=32).double(), features(3, 80, d=32, shift=0.2).double()
    expected_mean, _ = torchmetrics_kid(real, fake, subsets=1, subset_size=80, seed=0)
    mean, _ = kernel_inception_distance(real, fake, subsets=1, subset_size=80)
    assert mean == pytest.approx(expected_mean, rel=1e-9)
