"""The spatial (texture) generator and patch discriminator: any size, exact wrap-around, stated reach."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from deconvgan.config import ModelConfig
from deconvgan.errors import ConfigError
from deconvgan.latents import draw_latents
from deconvgan.models import build_discriminator, build_generator
from deconvgan.models.spatial import (
    CircularTransposedUpsample,
    PatchDiscriminator,
    SpatialGenerator,
    block_reach,
    field_channels,
    margin_cells,
    patch_receptive_field,
)
from deconvgan.models.upsample import TransposedUpsample, make_upsample

MODES = ("transposed", "resize", "pixelshuffle")


def spatial(**overrides) -> ModelConfig:
    base = dict(arch="spatial", resolution=32, channels=3, levels=3, g_width=8, d_width=8, local_channels=4,
                global_channels=2)
    return ModelConfig(**(base | overrides))


def lively(generator: nn.Module) -> nn.Module:
    """Eval mode with larger weights, so outputs are far from 0 and comparisons mean something."""
    torch.manual_seed(1)
    with torch.no_grad():
        for module in generator.modules():
            if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
                module.weight.normal_(0, 0.3)
    return generator.eval()


@settings(max_examples=15, deadline=None)
@given(h=st.integers(1, 5), w=st.integers(1, 5), levels=st.integers(1, 3), mode=st.sampled_from(MODES),
       k=st.integers(2, 5), tileable=st.booleans())
def test_any_field_size_gives_that_size_times_the_stride(h, w, levels, mode, k, tileable):
    cfg = spatial(levels=levels, resolution=2**levels * 4, upsample=mode, kernel_size=k, tileable=tileable)
    G = build_generator(cfg).eval()
    field = draw_latents(cfg, 2, torch.Generator().manual_seed(0), field_size=(h, w))
    assert field.shape == (2, field_channels(cfg), h, w)
    assert G(field).shape == (2, 3, h * 2**levels, w * 2**levels)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("k", [3, 4, 5])
def test_tileable_generator_commutes_with_rolling_the_field(mode, k):
    """On a torus, shifting the field by one cell shifts the image by 2^L pixels, exactly: every block wraps."""
    cfg = spatial(upsample=mode, kernel_size=k, tileable=True, resize_mode="bilinear" if k == 5 else "nearest")
    G = lively(build_generator(cfg))
    field = draw_latents(cfg, 2, torch.Generator().manual_seed(0), field_size=(3, 5))
    with torch.no_grad():
        image = G(field)
        for dims, shift in ((2, 1), (3, 2)):
            rolled = G(torch.roll(field, shift, dims=dims))
            torch.testing.assert_close(rolled, torch.roll(image, shift * 8, dims=dims), atol=1e-5, rtol=1e-5)
    assert image.std() > 0.1


@pytest.mark.parametrize(("k", "side"), [(7, 1), (7, 2), (9, 1), (4, 1)])
def test_circular_transposed_convolution_on_maps_smaller_than_its_kernel(k, side):
    """A one- or two-cell map under a large kernel wraps more than once: still the periodic extension."""
    torch.manual_seed(0)
    block = CircularTransposedUpsample(2, 2, k)
    x = torch.randn(1, 2, side, side)
    reps = 2 * (k // (2 * side) + 2) + 1  # odd, so a copy of x sits in the middle
    plain = TransposedUpsample(2, 2, k)
    plain.conv.load_state_dict(block.conv.state_dict())
    middle = (reps // 2) * 2 * side
    with torch.no_grad():
        reference = plain(x.repeat(1, 1, reps, reps))[..., middle:middle + 2 * side, middle:middle + 2 * side]
        torch.testing.assert_close(block(x), reference, atol=1e-6, rtol=1e-6)


def test_one_block_without_wrap_breaks_the_tiling():
    """The test above has teeth: replace one block by the plain (zero-padded) one and the roll fails."""
    cfg = spatial(tileable=True)
    G = lively(build_generator(cfg))
    field = draw_latents(cfg, 1, torch.Generator().manual_seed(0), field_size=(4, 4))
    assert isinstance(G.net.up2, CircularTransposedUpsample)
    plain = TransposedUpsample(G.net.up2.conv.in_channels, G.net.up2.conv.out_channels, 4, bias=False)
    plain.conv.load_state_dict(G.net.up2.conv.state_dict())
    G.net.up2 = plain
    with torch.no_grad():
        error = (G(torch.roll(field, 1, dims=3)) - torch.roll(G(field), 8, dims=3)).abs().max()
    assert error > 1e-2


def test_circular_transposed_convolution_is_the_periodic_extension():
    """Wrapping the overlap = a plain transposed convolution of the periodically extended input, centre kept."""
    torch.manual_seed(0)
    block = CircularTransposedUpsample(3, 2, 4)
    x = torch.randn(1, 3, 4, 5)
    extended = x.repeat(1, 1, 3, 3)  # [1, 3, 12, 15]: the middle copy is x
    plain = TransposedUpsample(3, 2, 4)
    plain.conv.load_state_dict(block.conv.state_dict())
    with torch.no_grad():
        reference = plain(extended)[..., 8:16, 10:20]
        torch.testing.assert_close(block(x), reference, atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize(("mode", "resize_mode"), [("transposed", "nearest"), ("pixelshuffle", "nearest"),
                                                    ("resize", "nearest"), ("resize", "bilinear")])
@pytest.mark.parametrize("k", [2, 3, 4, 5, 6])
def test_block_reach_matches_the_measured_dependence(mode, k, resize_mode):
    """Perturb one input cell and see which outputs move: no output farther than the stated reach may."""
    torch.manual_seed(0)
    block = make_upsample(mode, 1, 1, k, resize_mode=resize_mode)
    with torch.no_grad():
        block.conv.weight.uniform_(0.5, 1.0)  # positive taps: every structural dependence shows
    before, after = block_reach(mode, k, resize_mode)
    n = 12
    x = torch.zeros(1, 1, n, n)
    with torch.no_grad():
        base = block(x)
        for j in range(n):
            bumped = x.clone()
            bumped[0, 0, 5, j] = 1.0
            cols = ((block(bumped) - base).abs().sum(dim=(0, 1, 2)) > 0).nonzero().squeeze(1)
            # output column o reads input cells floor(o / 2) - before .. floor(o / 2) + after
            owners = torch.div(cols, 2, rounding_mode="floor")
            assert int((j - owners).max()) <= after and int((owners - j).max()) <= before
    exact = (mode == "transposed") or (mode == "pixelshuffle") or (resize_mode == "nearest")
    if exact:  # the bound is tight: some output reads exactly that far on each side
        bumped = x.clone()
        bumped[0, 0, 5, 6] = 1.0
        with torch.no_grad():
            cols = ((block(bumped) - base).abs().sum(dim=(0, 1, 2)) > 0).nonzero().squeeze(1)
        owners = torch.div(cols, 2, rounding_mode="floor")
        assert (int(6 - owners.min()), int(owners.max() - 6)) == (after, before)


def test_margin_follows_the_border_error_through_the_blocks():
    # k=4 transposed: 1 wrong pixel, then 2*1+1, 2*3+1, 2*7+1 = 15 of 16 pixels: one cell
    assert margin_cells(spatial(levels=4, kernel_size=4)) == 1
    # pixelshuffle k=5: (0+2)*2 = 4, (4+2)*2 = 12, (12+2)*2 = 28 pixels of 8 per cell: 4 cells
    assert margin_cells(spatial(levels=3, kernel_size=5, upsample="pixelshuffle")) == 4


def test_patch_discriminator_scores_each_patch_and_states_its_receptive_field():
    cfg = spatial(levels=3, resolution=64)
    D = build_discriminator(cfg).eval()
    assert isinstance(D, PatchDiscriminator)
    assert D(torch.zeros(2, 3, 64, 48)).shape == (2, 8 * 6)
    assert D.receptive_field == patch_receptive_field(cfg) == 38  # 3 -> 8 -> 18 -> 38
    x = torch.randn(1, 3, 128, 128, requires_grad=True)
    logits = D(x).view(1, 16, 16)
    logits[0, 8, 8].backward()
    rows = (x.grad.abs().sum(dim=(0, 1, 3)) > 0).nonzero().squeeze(1)
    assert int(rows.max() - rows.min()) + 1 == 38  # one logit reads exactly the stated patch


def test_periodic_channels_are_sinusoids_of_the_position():
    cfg = spatial(periodic_channels=3)
    G = build_generator(cfg)
    field = draw_latents(cfg, 1, torch.Generator().manual_seed(0), field_size=(4, 6))
    assert field.shape[1] == 4 + 2 + 3 + 2  # local, global, phases, (y, x)
    with torch.no_grad():
        first = G.input(field)[0, 6:]  # [3, 4, 6] periodic channels
        k = G.input.wave(field[:, 4:6])[0, :, 0, 0]  # [6]: (k_y, k_x) per channel, the same everywhere
    phase = 2 * torch.pi * 0.5 * (1 + torch.erf(field[0, 6:9, 0, 0] / 2**0.5))
    ys, xs = torch.meshgrid(torch.arange(4.0), torch.arange(6.0), indexing="ij")
    expected = torch.sin(k[0::2, None, None] * ys + k[1::2, None, None] * xs + phase[:, None, None])
    torch.testing.assert_close(first, expected, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize(("overrides", "message"), [
    (dict(resolution=36), "multiple of 2\\^levels = 8"),
    (dict(periodic_channels=2, tileable=True), "do not repeat over an arbitrary tile"),
    (dict(periodic_channels=2, global_channels=0), "need global_channels > 0"),
    (dict(d_pack=2), "patch discriminator takes neither"),
    (dict(local_channels=0, global_channels=0), "no noise"),
])
def test_bad_spatial_configs_are_one_line_errors(overrides, message):
    with pytest.raises(ConfigError, match=message):
        spatial(**overrides)


def test_texture_runs_refuse_what_does_not_apply():
    from deconvgan.configio import load_config

    with pytest.raises(ConfigError, match="run.metric=fd-classifier scores whole-image models"):
        load_config("texture", ["run.metric=fd-classifier"])
    with pytest.raises(ConfigError, match="trains on crops of your own images, not data.source=mnist"):
        load_config("texture", ["data.source=mnist"])
    with pytest.raises(ConfigError, match="data.source=texture-sample is one texture photograph"):
        load_config("mnist-28", ["data.source=texture-sample"])


def test_tileable_needs_the_spatial_arch():
    with pytest.raises(ConfigError, match="model.arch=spatial"):
        ModelConfig(arch="dcgan", resolution=32, tileable=True)


def test_registry_builds_the_spatial_pair():
    G = build_generator(spatial())
    assert isinstance(G, SpatialGenerator) and G.scale == 8 and G.latent_dim == field_channels(spatial())
