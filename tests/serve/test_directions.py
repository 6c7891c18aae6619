"""GANSpace latent directions: shapes, units, determinism, and that they move the feature map along its PCs."""

from __future__ import annotations

import pytest
import torch

from deconvgan.checkpoint import load_snapshot
from deconvgan.errors import ConfigError
from deconvgan.serve.directions import compute_directions, first_feature_map


@pytest.fixture(scope="module")
def digits(serve_snapshots):
    return load_snapshot(serve_snapshots["digits"])


def test_directions_are_unit_latent_vectors_with_descending_variance(digits):
    generator, info = digits
    d = compute_directions(generator, info.model, count=6, samples=1024)
    assert d.vectors.shape == (6, 8) and d.scales.shape == d.explained_variance.shape == (6,)
    assert torch.allclose(d.vectors.norm(dim=1), torch.ones(6), atol=1e-5)
    ratios = d.explained_variance.tolist()
    assert ratios == sorted(ratios, reverse=True) and 0 < sum(ratios) <= 1
    # z is standard normal: along any unit direction its spread is about 1
    assert torch.all((d.scales > 0.8) & (d.scales < 1.2))
    again = compute_directions(generator, info.model, count=6, samples=1024)
    assert torch.equal(again.vectors, d.vectors)  # seeded: the same sliders after every restart


def test_moving_along_direction_k_moves_the_first_feature_map_along_pc_k(digits):
    generator, info = digits
    d = compute_directions(generator, info.model, count=4, samples=2048)
    reference = first_feature_map(generator, torch.randn(2048, 8, generator=torch.Generator().manual_seed(0)))
    centred = reference.double() - reference.double().mean(0)
    _, _, vh = torch.linalg.svd(centred, full_matrices=False)  # the exact principal axes
    z = torch.randn(256, 8, generator=torch.Generator().manual_seed(1))
    base = first_feature_map(generator, z).double()
    for k in range(3):
        moved = first_feature_map(generator, z + 0.5 * d.vectors[k]).double()
        along = ((moved - base) @ vh[:4].T).abs().mean(0)  # mean |change| along each of the first 4 PCs
        assert along.argmax().item() == k and along[k] > 0.5 * along.sum()


def test_global_rng_untouched_and_models_in_their_mode(digits):
    generator, info = digits
    generator.train()
    state = torch.get_rng_state()
    compute_directions(generator, info.model, count=2, samples=64)
    assert torch.equal(torch.get_rng_state(), state) and generator.training
    generator.eval()


def test_conditional_generators_have_directions_and_textures_none(serve_snapshots):
    generator, info = load_snapshot(serve_snapshots["classes"])
    assert compute_directions(generator, info.model, count=3, samples=256).vectors.shape == (3, 8)
    texture, tinfo = load_snapshot(serve_snapshots["texture"])
    with pytest.raises(ConfigError, match="whole-image models"):
        compute_directions(texture, tinfo.model)
    with pytest.raises(ConfigError, match="count=0 must be >= 1"):
        compute_directions(generator, info.model, count=0)
