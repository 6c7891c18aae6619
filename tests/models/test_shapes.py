"""Exact output shapes of G and D for every resolution x upsampler x channels x kernel size."""

from __future__ import annotations

import itertools

import pytest
import torch

from deconvgan.config import ModelConfig
from deconvgan.models import build_discriminator, build_generator, discriminator_widths, generator_widths

RESOLUTIONS = (16, 28, 32, 64, 128)
GRID = list(itertools.product(RESOLUTIONS, ("transposed", "resize", "pixelshuffle"), (1, 3), (3, 4, 5)))


@pytest.mark.parametrize("resolution,upsample,channels,kernel_size", GRID)
def test_generator_and_discriminator_shapes(
    resolution: int, upsample: str, channels: int, kernel_size: int
) -> None:
    cfg = ModelConfig(
        resolution=resolution, upsample=upsample, channels=channels, kernel_size=kernel_size,
        latent_dim=8, g_width=8, d_width=8, max_width=32,
    )
    torch.manual_seed(0)
    generator, discriminator = build_generator(cfg), build_discriminator(cfg)
    with torch.no_grad():
        images = generator(torch.randn(2, 8))
        assert images.shape == (2, channels, resolution, resolution)
        assert discriminator(images).shape == (2,)


@pytest.mark.parametrize(
    "resolution,expected_g,expected_d",
    [
        (64, (512, 256, 128, 64), (64, 128, 256, 512)),  # pytorch/examples DCGAN
        (128, (512, 512, 256, 128, 64), (64, 128, 256, 512, 512)),  # capped at max_width
        (28, (128, 64), (64, 128)),  # 7 -> 14 -> 28
        (16, (128, 64), (64, 128)),
    ],
)
def test_widths(resolution: int, expected_g: tuple[int, ...], expected_d: tuple[int, ...]) -> None:
    cfg = ModelConfig(resolution=resolution)
    assert generator_widths(cfg) == expected_g
    assert discriminator_widths(cfg) == expected_d
