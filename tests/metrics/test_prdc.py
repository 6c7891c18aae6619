"""Precision/recall (Kynkäänniemi et al.) and density/coverage (Naeem et al.) on k-NN balls."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch

from deconvgan.metrics import DensityCoverage, PrecisionRecall, density_coverage, precision_recall
from deconvgan.metrics import prdc as prdc_module
from deconvgan.metrics.prdc import knn_radii

from .conftest import reference_prdc


def points(*values: float) -> torch.Tensor:
    """1-D points as an [N, 1] feature set."""
    return torch.tensor(values, dtype=torch.float64)[:, None]


def gaussian(seed: int, n: int, d: int = 8, shift: float = 0.0) -> torch.Tensor:
    return torch.randn(n, d, generator=torch.Generator().manual_seed(seed)) + shift


def test_identical_sets_score_one() -> None:
    x = gaussian(0, 300)
    assert precision_recall(x, x) == PrecisionRecall(precision=1.0, recall=1.0)
    # Open balls: each holds its centre and k - 1 neighbours (the k-th is on the boundary) -> exactly 1.
    assert density_coverage(x, x) == DensityCoverage(density=1.0, coverage=1.0)


def test_far_apart_sets_score_zero() -> None:
    real, fake = gaussian(0, 100), gaussian(1, 80, shift=100.0)
    assert precision_recall(real, fake) == PrecisionRecall(precision=0.0, recall=0.0)
    assert density_coverage(real, fake) == DensityCoverage(density=0.0, coverage=0.0)


def test_hand_built_1d_example() -> None:
    real = points(0, 1, 2, 3, 6)
    fake = points(0.5, 2.5, 20, 20.5)
    # k = 1. Real radii (distance to the nearest other real point): 0,1,2,3 -> 1; 6 -> 3.
    # Fake radii: 0.5 -> 2 (to 2.5), 2.5 -> 2, 20 -> 0.5, 20.5 -> 0.5.
    assert knn_radii(real, 1).tolist() == [1, 1, 1, 1, 3]
    assert knn_radii(fake, 1).tolist() == [2, 2, 0.5, 0.5]
    # Precision: 0.5 (0.5 from 0) and 2.5 (0.5 from 2) are in real balls; 20 and 20.5 are 14+ from 6 > 3.
    # Recall: reals 0, 1, 2, 3 are 0.5 from a fake whose radius is 2; 6 is 3.5 > 2 from 2.5 and 14 > 0.5 from 20.
    assert precision_recall(real, fake, k=1) == PrecisionRecall(precision=0.5, recall=0.8)
    # Density: fake 0.5 is inside the balls of 0 and 1 (0.5 < 1), 2.5 inside those of 2 and 3, the far
    # pair in none: 4 memberships / (k=1 * 4 fakes) = 1. Coverage: the ball of 6 (radius 3) holds no fake
    # (nearest 2.5 is 3.5 away); the other four do: 4/5.
    assert density_coverage(real, fake, k=1) == DensityCoverage(density=1.0, coverage=0.8)
    # k = 2. Real radii: 0 -> 2, 1 -> 1, 2 -> 1, 3 -> 2, 6 -> 4. Fake 0.5 is in the balls of 0 and 1;
    # 2.5 in those of 2, 3 and 6 (3.5 < 4): 5 / (2 * 4) = 0.625. Every real ball holds a fake now.
    assert knn_radii(real, 2).tolist() == [2, 1, 1, 2, 4]
    assert density_coverage(real, fake, k=2) == DensityCoverage(density=0.625, coverage=1.0)


def test_ties_closed_for_precision_recall_open_for_density_coverage() -> None:
    real = points(0, 1)  # both radii 1 at k=1
    # Fake 2 is exactly on the boundary of the ball of 1: inside for precision (closed, as Kynkäänniemi
    # et al.'s code), outside for density and coverage (open, as Naeem et al.'s code).
    assert precision_recall(real, points(2, 5), k=1).precision == 0.5
    assert density_coverage(real, points(2), k=1) == DensityCoverage(density=0.0, coverage=0.0)


def test_duplicates_are_at_distance_exactly_zero() -> None:
    # Large norms: |a|^2 + |b|^2 - 2 a.b leaves round-off of ~1e-6 here unless snapped to 0.
    x = gaussian(0, 40, d=64) * 10 + 100
    doubled = torch.cat([x, x])  # every point has a twin: all k=1 radii are 0
    assert torch.equal(knn_radii(doubled, 1), torch.zeros(80, dtype=torch.float64))
    assert precision_recall(doubled, x, k=1).precision == 1.0  # closed balls of radius 0 hold their twin
    assert density_coverage(doubled, x, k=1).coverage == 0.0  # open balls of radius 0 are empty


def test_independent_samples_of_one_distribution() -> None:
    real, fake = gaussian(0, 2000, d=4), gaussian(1, 2000, d=4)
    pr, dc = precision_recall(real, fake), density_coverage(real, fake)
    assert pr.precision > 0.85 and pr.recall > 0.85
    assert 0.9 < dc.density < 1.1  # density's expectation is 1 for matching distributions
    assert dc.coverage > 0.9


def test_blocks_give_the_same_answer(monkeypatch: pytest.MonkeyPatch) -> None:
    real, fake = gaussian(0, 97, d=5), gaussian(1, 61, d=5, shift=0.3)
    whole = precision_recall(real, fake), density_coverage(real, fake)
    monkeypatch.setattr(prdc_module, "BLOCK_ELEMENTS", 500)  # blocks of 5-8 rows, ragged last block
    assert (precision_recall(real, fake), density_coverage(real, fake)) == whole


@pytest.mark.parametrize("shift", [0.7, 1.5])
def test_values_match_a_brute_force_reference(shift: float) -> None:
    # All pairwise distances in numpy, radii from a full sort: k=3 for precision/recall, k=5 for
    # density/coverage. Random points have no ties, so the fractions must be equal exactly.
    real, fake = gaussian(0, 60, d=3), gaussian(1, 45, d=3, shift=shift)
    expected = reference_prdc(real, fake, k_pr=3, k_dc=5)
    pr, dc = precision_recall(real, fake, k=3), density_coverage(real, fake)
    assert {**dataclasses.asdict(pr), **dataclasses.asdict(dc)} == expected
    assert all(0 < v < 1 for v in expected.values())  # a case where every value says something


def test_results_are_frozen_floats() -> None:
    result = precision_recall(gaussian(0, 20), gaussian(1, 20))
    assert isinstance(result.precision, float) and isinstance(result.recall, float)
    expected = reference_prdc(gaussian(0, 20), gaussian(1, 20))
    assert result == PrecisionRecall(precision=expected["precision"], recall=expected["recall"])
    with pytest.raises(dataclasses.FrozenInstanceError, match="cannot assign to field"):
        result.precision = 0.0  # type: ignore[misc]


@pytest.mark.parametrize(
    "real,fake,k,match",
    [
        (torch.zeros(5, 2), torch.zeros(5, 3), 1, "same D"),
        (torch.zeros(5, 2), torch.zeros(5, 2), 0, "k=0"),
        (torch.zeros(3, 2), torch.zeros(5, 2), 3, "need more than k=3"),
        (torch.zeros(5, 2), torch.zeros(3, 2), 3, "need more than k=3"),  # recall needs fake radii
        (torch.full((5, 2), math.nan), torch.zeros(5, 2), 1, "NaN"),
    ],
)
def test_precision_recall_refuses_bad_input(real, fake, k, match) -> None:
    with pytest.raises(ValueError, match=match):
        precision_recall(real, fake, k=k)


def test_density_coverage_needs_no_fake_radii() -> None:
    # One fake point is enough (precision_recall would need more than k); radii 1, 1, 1: 0.5 is
    # inside the balls of 0 and 1, not of 2 (1.5 away).
    assert density_coverage(points(0, 1, 2), points(0.5), k=1) == DensityCoverage(density=2.0, coverage=2 / 3)
    with pytest.raises(ValueError, match="empty"):
        density_coverage(points(0, 1, 2), torch.zeros(0, 1), k=1)
