"""Fréchet distance: statistics, closed forms, properties, and agreement with torchmetrics' FID."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from deconvgan.metrics import feature_statistics, frechet_distance
from deconvgan.metrics import frechet as frechet_module

from .conftest import FeatureLookup

FAST = settings(max_examples=40, deadline=None)  # deadline: the first LAPACK call is slow


def random_stats(seed: int, d: int, n: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and covariance of ``n`` (default 3d) correlated random vectors in ``d`` dimensions."""
    gen = torch.Generator().manual_seed(seed)
    mix = torch.randn(d, d, generator=gen, dtype=torch.float64)
    features = torch.randn(n or 3 * d, d, generator=gen, dtype=torch.float64) @ mix + torch.randn(d, generator=gen)
    return feature_statistics(features)


def test_feature_statistics_match_numpy_in_float64(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(frechet_module, "CHUNK", 7)  # several blocks, one ragged
    features = torch.randn(50, 6, generator=torch.Generator().manual_seed(0)) * 3 + 10  # float32 in
    mu, sigma = feature_statistics(features)
    assert mu.dtype == sigma.dtype == torch.float64 and mu.shape == (6,) and sigma.shape == (6, 6)
    array = features.double().numpy()
    np.testing.assert_allclose(mu.numpy(), array.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(sigma.numpy(), np.cov(array, rowvar=False, ddof=1), rtol=1e-10)


@pytest.mark.parametrize(("shape", "match"), [((1, 4), "at least 2 feature vectors"), ((4,), r"must be \[N, D\]"),
                                             ((2, 3, 4), r"must be \[N, D\]")])
def test_feature_statistics_refuse_bad_input(shape: tuple[int, ...], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        feature_statistics(torch.zeros(shape))


def test_feature_statistics_refuse_nan() -> None:
    features = torch.zeros(4, 2)
    features[1, 1] = math.nan
    with pytest.raises(ValueError, match="NaN"):
        feature_statistics(features)


@FAST
@given(seed=st.integers(0, 2**31 - 1), d=st.integers(1, 8))
def test_symmetric_nonnegative_and_zero_on_identical_stats(seed: int, d: int) -> None:
    mu1, sigma1 = random_stats(seed, d)
    mu2, sigma2 = random_stats(seed + 1, d)
    forward, backward = frechet_distance(mu1, sigma1, mu2, sigma2), frechet_distance(mu2, sigma2, mu1, sigma1)
    assert forward >= 0
    assert forward == pytest.approx(backward, rel=1e-8, abs=1e-9)
    scale = float(sigma1.trace())
    assert frechet_distance(mu1, sigma1, mu1, sigma1) <= 1e-9 * scale


@FAST
@given(
    entries=st.lists(
        st.tuples(
            st.floats(-10, 10), st.floats(-10, 10),  # mu1_i, mu2_i
            st.floats(0, 100), st.floats(0, 100),  # variances s1_i, s2_i (zero allowed: singular)
        ),
        min_size=1, max_size=8,
    )
)
def test_diagonal_covariances_have_the_closed_form(entries: list[tuple[float, float, float, float]]) -> None:
    mu1, mu2, s1, s2 = (torch.tensor(column, dtype=torch.float64) for column in zip(*entries, strict=True))
    expected = ((mu1 - mu2) ** 2).sum() + ((s1.sqrt() - s2.sqrt()) ** 2).sum()
    value = frechet_distance(mu1, torch.diag(s1), mu2, torch.diag(s2))
    assert value == pytest.approx(float(expected), rel=1e-9, abs=1e-9 * (1 + float(s1.sum() + s2.sum())))


def test_equal_covariances_leave_only_the_mean_term() -> None:
    mu1, sigma = random_stats(0, 5)
    mu2 = mu1 + torch.tensor([1.0, -2.0, 0.0, 0.5, 0.0], dtype=torch.float64)
    assert frechet_distance(mu1, sigma, mu2, sigma) == pytest.approx(1 + 4 + 0.25, rel=1e-9)


def test_singular_covariances_match_the_symmetric_form() -> None:
    # Fewer samples than dimensions (rank-deficient sigmas): the case sqrtm struggles with.
    mu1, sigma1 = random_stats(1, 12, n=5)
    mu2, sigma2 = random_stats(2, 12, n=7)
    values, vectors = torch.linalg.eigh(sigma1)
    root1 = vectors @ torch.diag(values.clamp_min(0).sqrt()) @ vectors.T
    trace_sqrt = torch.linalg.eigvalsh(root1 @ sigma2 @ root1).clamp_min(0).sqrt().sum()
    expected = (mu1 - mu2).square().sum() + sigma1.trace() + sigma2.trace() - 2 * trace_sqrt
    assert frechet_distance(mu1, sigma1, mu2, sigma2) == pytest.approx(float(expected), rel=1e-7)


def test_agrees_with_scipy_sqrtm_on_full_rank_stats() -> None:
    linalg = pytest.importorskip("scipy.linalg")
    mu1, sigma1 = random_stats(3, 10)
    mu2, sigma2 = random_stats(4, 10)
    root = linalg.sqrtm(sigma1.numpy() @ sigma2.numpy())
    expected = float((mu1 - mu2).square().sum()) + float(sigma1.trace() + sigma2.trace()) - 2 * np.trace(root).real
    assert frechet_distance(mu1, sigma1, mu2, sigma2) == pytest.approx(expected, rel=1e-8)


def test_accepts_numpy_and_float32() -> None:
    mu1, sigma1 = random_stats(5, 4)
    mu2, sigma2 = random_stats(6, 4)
    reference = frechet_distance(mu1, sigma1, mu2, sigma2)
    assert frechet_distance(mu1.numpy(), sigma1.numpy(), mu2.numpy(), sigma2.numpy()) == pytest.approx(reference)
    assert frechet_distance(mu1.float(), sigma1.float(), mu2.float(), sigma2.float()) == pytest.approx(
        reference, rel=1e-5
    )


@pytest.mark.parametrize(
    "mu2_shape,sigma2_shape,match",
    [((5,), (4, 4), "means must be"), ((4,), (4, 5), r"sigma2 must be \[4, 4\]"), ((4, 1), (4, 4), "means must be")],
)
def test_refuses_mismatched_shapes(mu2_shape: tuple[int, ...], sigma2_shape: tuple[int, ...], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        frechet_distance(torch.zeros(4), torch.eye(4), torch.zeros(mu2_shape), torch.eye(*sigma2_shape))


# torchmetrics accumulates in float64 whatever the input, then returns the value in the input's dtype:
# float64 agrees to round-off (the README's 1e-9; measured 1e-15), float32 to the float32 rounding
# of the result (half an ulp: 2**-24 relative; measured 3e-8).
@pytest.mark.parametrize(("dtype", "rel"), [(torch.float32, 2.0**-24), (torch.float64, 1e-9)])
def test_agrees_with_torchmetrics_fid(dtype: torch.dtype, rel: float) -> None:
    fid_module = pytest.importorskip("torchmetrics.image.fid")
    gen = torch.Generator().manual_seed(0)
    real = torch.randn(400, 32, generator=gen).to(dtype)
    fake = (torch.randn(300, 32, generator=gen) @ (torch.eye(32) + 0.2 * torch.randn(32, 32, generator=gen)) + 0.3)
    fake = fake.to(dtype)
    metric = fid_module.FrechetInceptionDistance(feature=FeatureLookup(torch.cat([real, fake])))
    metric.update(torch.arange(400), real=True)
    metric.update(torch.arange(400, 700), real=False)
    expected = float(metric.compute())
    ours = frechet_distance(*feature_statistics(real), *feature_statistics(fake))
    assert ours == pytest.approx(expected, rel=rel)
