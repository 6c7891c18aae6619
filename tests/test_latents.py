"""Latent vectors and fields: training draws, and fields as a pure function of (seed, position)."""

from __future__ import annotations

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from deconvgan.config import ModelConfig
from deconvgan.latents import BLOCK, draw_latents, seed_field

SPATIAL = ModelConfig(arch="spatial", resolution=32, channels=3, levels=3, local_channels=3, global_channels=2,
                      periodic_channels=1)


def test_whole_image_models_draw_the_plain_normal_of_before():
    cfg = ModelConfig()
    got = draw_latents(cfg, 5, torch.Generator().manual_seed(3))
    torch.testing.assert_close(got, torch.randn(5, cfg.latent_dim, generator=torch.Generator().manual_seed(3)),
                               rtol=0, atol=0)


def test_training_fields_hold_local_noise_and_constant_global_channels():
    field = draw_latents(SPATIAL, 4, torch.Generator().manual_seed(0))
    assert field.shape == (4, 3 + 2 + 1 + 2, 4, 4)  # the 32-pixel crop is a 4x4-cell field
    local, per_image, coords = field[:, :3], field[:, 3:6], field[:, 6:]
    assert local.flatten(2).std(dim=2).min() > 0.2  # varies over positions
    assert torch.equal(per_image, per_image[:, :, :1, :1].expand_as(per_image))  # constant over positions
    assert not torch.equal(per_image[0], per_image[1])  # but differs between images
    assert torch.equal(coords[0, 0], torch.arange(4.0)[:, None].expand(4, 4))  # y
    assert torch.equal(coords[0, 1], torch.arange(4.0)[None, :].expand(4, 4))  # x


@settings(max_examples=25, deadline=None)
@given(top=st.integers(-40, 40), left=st.integers(-40, 40), h=st.integers(1, 20), w=st.integers(1, 20),
       dy=st.integers(0, 19), dx=st.integers(0, 19))
def test_any_window_holds_the_same_cells_as_any_larger_window(top, left, h, w, dy, dx):
    big = seed_field(SPATIAL, 7, top, left, 40, 40)
    small = seed_field(SPATIAL, 7, top + dy, left + dx, h, w)
    torch.testing.assert_close(small, big[..., dy:dy + h, dx:dx + w], rtol=0, atol=0)


def test_periodic_fields_repeat_and_seeds_differ():
    period = (5, 7)
    field = seed_field(SPATIAL, 3, -5, 0, 15, 21, period=period)
    local = field[:, :3]
    torch.testing.assert_close(local[..., :5, :], local[..., 5:10, :], rtol=0, atol=0)
    torch.testing.assert_close(local[..., :7], local[..., 7:14], rtol=0, atol=0)
    assert not torch.equal(seed_field(SPATIAL, 3, 0, 0, 4, 4), seed_field(SPATIAL, 4, 0, 0, 4, 4))


def test_blocks_are_independent_draws():
    field = seed_field(SPATIAL, 0, 0, 0, 2 * BLOCK, 2 * BLOCK)[0, 0]
    a, b = field[:BLOCK, :BLOCK], field[:BLOCK, BLOCK:]
    assert not torch.equal(a, b)
    assert abs(torch.corrcoef(torch.stack([a.flatten(), b.flatten()]))[0, 1]) < 0.2
