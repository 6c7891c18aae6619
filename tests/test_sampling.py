"""Seeds, per-seed latents, batch-size independence, truncation and spherical interpolation."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import example, given, settings
from hypothesis import strategies as st

from deconvgan.config import ModelConfig
from deconvgan.errors import ConfigError
from deconvgan.models import build_generator
from deconvgan.sampling import generate, interpolation_path, latents_for_seeds, parse_seeds, slerp


def test_parse_seeds():
    assert parse_seeds("0-3,10") == [0, 1, 2, 3, 10]
    assert parse_seeds(" 5 ") == [5]
    for bad, message in (("3-1", "runs backwards"), ("a", "not a number"), ("", "names no seed"), (",", "names no")):
        with pytest.raises(ConfigError, match=message):
            parse_seeds(bad)


def test_latent_of_a_seed_does_not_depend_on_its_neighbours():
    alone = latents_for_seeds([42], 16)
    among = latents_for_seeds([1, 42, 7], 16)
    assert torch.equal(alone[0], among[1])


@pytest.mark.parametrize("upsample", ["transposed", "resize", "pixelshuffle"])
def test_image_of_a_seed_is_the_same_at_any_batch_size(upsample):
    torch.manual_seed(0)
    cfg = ModelConfig(resolution=16, latent_dim=8, g_width=8, max_width=16, upsample=upsample)
    generator = build_generator(cfg).eval()
    latents = latents_for_seeds(list(range(9)), cfg.latent_dim)
    one_by_one = generate(generator, latents, batch_size=1)
    in_threes = generate(generator, latents, batch_size=3)
    all_at_once = generate(generator, latents, batch_size=64)
    assert torch.equal(one_by_one, all_at_once) and torch.equal(in_threes, all_at_once)


def test_truncation_bounds_the_latents():
    z = latents_for_seeds(list(range(50)), 32, truncation=0.5)
    assert z.abs().max() < 0.5
    assert torch.equal(z, latents_for_seeds(list(range(50)), 32, truncation=0.5))
    with pytest.raises(ConfigError, match="truncation"):
        latents_for_seeds([0], 4, truncation=0)


@pytest.mark.parametrize("t", [1.0, 2.0])
def test_truncation_draws_the_truncated_normal(t: float):
    # A standard normal conditioned on [-t, t], not clamped to it (clamping piles 32% (t=1) or 5% (t=2) of
    # the draws at +-t) and not uniform on it: the KS distance to the truncated normal's CDF is small, and
    # the variance is the closed form 1 - 2 t phi(t) / (2 Phi(t) - 1) (0.2911 at t=1, 0.7737 at t=2).
    z = latents_for_seeds(list(range(200)), 64, truncation=t).double().flatten()  # 12,800 draws
    assert z.abs().max() < t  # strictly inside: no draw sits on a bound
    assert int((z.abs() > 0.995 * t).sum()) < 0.01 * z.numel()  # no mass piled up near the bounds

    def cdf(x: float) -> float:
        return 0.5 * (1 + math.erf(x / math.sqrt(2)))

    mass = 2 * cdf(t) - 1
    variance = 1 - 2 * t * math.exp(-t * t / 2) / math.sqrt(2 * math.pi) / mass
    values = sorted(z.tolist())
    n = len(values)
    ks = max(max(abs((i + 1) / n - (cdf(x) - cdf(-t)) / mass), abs(i / n - (cdf(x) - cdf(-t)) / mass))
             for i, x in enumerate(values))
    assert ks < 1.63 / math.sqrt(n)  # the KS test's 1% critical value (0.0144 here)
    assert float(z.var()) == pytest.approx(variance, rel=0.03)  # sd of the estimate ~1%
    assert abs(float(z.mean())) < 4 * math.sqrt(variance / n)


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10**6), dim=st.integers(2, 64))
@example(seed=22, dim=2)  # nearly opposite latents: float32 round-off once bent the norm by 5e-4
def test_slerp_endpoints_and_norms(seed, dim):
    a, b = latents_for_seeds([seed, seed + 1], dim)
    t = torch.linspace(0, 1, 7)
    path = slerp(a, b, t)
    assert torch.allclose(path[0], a, atol=1e-5) and torch.allclose(path[-1], b, atol=1e-5)
    # the norm moves linearly between the endpoints' norms (no dip towards the origin)
    expected = (1 - t) * a.norm() + t * b.norm()
    assert torch.allclose(path.norm(dim=1), expected, rtol=1e-4)


def test_interpolation_path_passes_through_every_seed():
    latents = latents_for_seeds([0, 1, 2], 8)
    path = interpolation_path(latents, frames_per_step=4)
    assert path.shape == (9, 8)
    for i in range(3):
        assert torch.allclose(path[4 * i], latents[i], atol=1e-5)
    with pytest.raises(ConfigError, match="at least two seeds"):
        interpolation_path(latents[:1], 4)
