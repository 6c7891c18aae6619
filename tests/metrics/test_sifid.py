"""SIFID: exact values with a stand-in extractor; the early block of the pinned FID Inception on real crops."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from deconvgan.errors import DataError
from deconvgan.metrics.inception import InceptionFeatures, load_network
from deconvgan.metrics.sifid import (
    BLOCKS,
    EarlyInceptionFeatures,
    feature_map_size,
    min_side,
    sifid,
    sifid_pairs,
)

from .texture_helpers import needs_inception, needs_textures, random_crops, texture


def pixels(images: torch.Tensor) -> torch.Tensor:
    """Stand-in extractor: the pixel values themselves are the features ([N, C, H, W] -> float64, D = C)."""
    return images.to(torch.float64)


def test_known_value_on_one_channel_pixels() -> None:
    """Positions are the samples. a = [0, 0, 2, 2]: mean 1, unbiased variance 4/3; b = [4, 4, 8, 8]:
    mean 6, variance 16/3. 1-D Fréchet: (1 - 6)^2 + (sqrt(4/3) - sqrt(16/3))^2 = 25 + 4/3 = 79/3."""
    a = torch.tensor([0, 0, 2, 2], dtype=torch.uint8).view(1, 1, 2, 2)
    b = torch.tensor([4, 4, 8, 8], dtype=torch.uint8).view(1, 1, 2, 2)
    assert sifid(a, b, pixels) == pytest.approx(79 / 3, rel=1e-9)
    assert sifid(b, a, pixels) == pytest.approx(79 / 3, rel=1e-9)


def test_each_pair_is_compared_on_its_own_and_the_pairs_are_averaged() -> None:
    """Shifting an image's colours by delta leaves its covariance alone: the pair's SIFID is |delta|^2
    exactly. Two pairs with different shifts average to the mean of the two (pooling the positions of
    all images into one Gaussian per side would give something else)."""
    gen = torch.Generator().manual_seed(0)
    base = torch.randint(20, 200, (2, 3, 6, 7), generator=gen, dtype=torch.uint8)
    shifts = torch.tensor([[3, -2, 5], [0, 10, 1]], dtype=torch.int64)  # per pair, per channel
    shifted = (base.long() + shifts[:, :, None, None]).to(torch.uint8)
    expected = shifts.double().square().sum(dim=1)  # [38, 101]
    assert torch.allclose(sifid_pairs(base, shifted, pixels), expected, rtol=1e-9)
    assert sifid(shifted, base, pixels) == pytest.approx(float(expected.mean()), rel=1e-9)
    assert sifid(base, base, pixels) == 0.0


def test_mismatched_or_wrong_inputs_are_one_line_data_errors() -> None:
    a = torch.zeros(2, 3, 8, 8, dtype=torch.uint8)
    cases = [
        ((a, torch.zeros(2, 3, 8, 9, dtype=torch.uint8)), "one size"),
        ((a, torch.zeros(3, 3, 8, 8, dtype=torch.uint8)), "one size"),
        ((a.float(), a), "uint8"),
        ((a[:0], a[:0]), "empty"),
        ((a[:, :, :1, :3], a[:, :, :1, :3]), "3 positions, fewer than the 4"),  # D = 3 needs 4
    ]
    for args, message in cases:
        with pytest.raises(DataError, match=message) as info:
            sifid(*args, extractor=pixels)
        assert "\n" not in str(info.value)


def test_feature_map_size_and_minimum_side() -> None:
    assert feature_map_size(128, 128) == (61, 61) and feature_map_size(128, 128, 192) == (28, 28)
    assert feature_map_size(299, 299) == (147, 147) and feature_map_size(299, 299, 192) == (71, 71)  # Inception's own
    assert min_side(64) == 23 and min_side(192) == 71  # 9x9 = 81 >= 65 positions; 14x14 = 196 >= 193


# --- the pinned FID Inception ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def early() -> EarlyInceptionFeatures:
    return EarlyInceptionFeatures()  # loads the sha256-checked default_1.pt once (~0.3 s)


@needs_inception
def test_the_block_is_a_prefix_of_the_fid_network_with_fids_scaling() -> None:
    """Running the network's remaining layers on our 64-channel map gives InceptionFeatures' 2048-d
    FID vector: same network, same input scaling, nothing skipped or repeated. 192 likewise."""
    net, _ = load_network()
    layers = net.net.layers
    names = [name for name, _ in layers.named_children()]
    image = torch.randint(0, 256, (1, 3, 299, 299), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))
    fid_vector = InceptionFeatures(progress=False)(image)  # 299 px: no resize on the FID path either
    for dims in (64, 192):
        extractor = EarlyInceptionFeatures(dims)
        maps = extractor(image)
        assert maps.shape == (1, dims, *feature_map_size(299, 299, dims))
        rest = torch.nn.Sequential(*(getattr(layers, name) for name in names[len(BLOCKS[dims]):]))
        with torch.inference_mode():
            completed = rest(maps).reshape(1, -1)
        assert torch.allclose(completed, fid_vector, atol=1e-4), (dims, (completed - fid_vector).abs().max())


@needs_inception
def test_own_size_no_resize_and_grayscale(early: EarlyInceptionFeatures) -> None:
    gen = torch.Generator().manual_seed(2)
    gray = torch.randint(0, 256, (2, 1, 37, 50), dtype=torch.uint8, generator=gen)
    maps = early(gray)
    assert maps.shape == (2, 64, *feature_map_size(37, 50)) == (2, 64, 16, 22)
    assert torch.equal(maps, early(gray.repeat(1, 3, 1, 1)))  # grayscale = RGB with equal channels
    with pytest.raises(DataError, match="use at least 23 px"):
        early(torch.zeros(1, 3, 6, 6, dtype=torch.uint8))
    with pytest.raises(DataError, match="dims=100"):
        EarlyInceptionFeatures(100)


@needs_inception
@needs_textures
def test_zero_for_itself_symmetric_and_ordered_by_damage(early: EarlyInceptionFeatures) -> None:
    """On 96-px crops of two photographs: SIFID(x, x) = 0; symmetric; +-2 grey-level noise (invisible)
    costs far less than a blur or a colour shift (saw 0.002-0.004 vs 12-26 and 2.5-2.8)."""
    x = torch.cat([random_crops(texture("bark"), 2, 96, seed=3), random_crops(texture("gravel"), 2, 96, seed=4)])
    gen = torch.Generator().manual_seed(5)
    noisy = (x.short() + torch.randint(-2, 3, x.shape, generator=gen)).clamp(0, 255).to(torch.uint8)
    blurred = F.avg_pool2d(x.float(), 5, stride=1, padding=2, count_include_pad=False).round().to(torch.uint8)
    warmer = (x.short() + torch.tensor([24, 0, -24])[:, None, None]).clamp(0, 255).to(torch.uint8)
    assert sifid_pairs(x, x, early).abs().max() < 1e-9
    assert sifid(x, blurred, early) == pytest.approx(sifid(blurred, x, early), rel=1e-9, abs=1e-12)
    small, blur, shift = (sifid_pairs(x, other, early) for other in (noisy, blurred, warmer))
    assert (small > 0).all() and (small * 100 < blur).all() and (small * 100 < shift).all(), (small, blur, shift)


@needs_inception
@needs_textures
def test_crops_of_one_texture_are_closer_than_crops_of_another(early: EarlyInceptionFeatures) -> None:
    """Two sets of random crops of the same photograph against crops of a different material.
    Measured at 128 px (16 pairs): within a texture 0.3 (sand) .. 3.1 (leaves), across 4 .. 36."""
    for name, other in (("grass", "gravel"), ("bark", "bricks"), ("sand", "wood")):
        a = random_crops(texture(name), 4, 64, seed=1)
        b = random_crops(texture(name), 4, 64, seed=2)
        c = random_crops(texture(other), 4, 64, seed=3)
        same, across = sifid(a, b, early), sifid(a, c, early)
        assert 0 < same and 2 * same < across, (name, other, same, across)
