"""Vectorised resizing and channel conversion of uint8 image tensors."""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from deconvgan.data.resize import resize_images, rgb_to_luma, to_geometry


def _random(n: int, c: int, side: int, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, c, side, side), dtype=torch.uint8, generator=generator)


def test_same_size_is_untouched() -> None:
    x = _random(4, 1, 28)
    assert resize_images(x, 28) is x or torch.equal(resize_images(x, 28), x)


def test_resize_shapes_and_constants() -> None:
    x = torch.full((3, 2, 28, 28), 77, dtype=torch.uint8)
    for size in (8, 16, 32, 64):
        y = resize_images(x, size)
        assert y.shape == (3, 2, size, size) and y.dtype == torch.uint8 and y.is_contiguous()
        assert torch.all(y == 77)  # an antialiasing filter preserves flat regions exactly


def test_downsampling_is_antialiased() -> None:
    # A 1-pixel checkerboard halved must become flat mid-grey, not aliased stripes.
    board = (torch.arange(32).view(1, -1) + torch.arange(32).view(-1, 1)) % 2 * 255
    y = resize_images(board.to(torch.uint8).view(1, 1, 32, 32), 16)
    assert int(y.min()) >= 120 and int(y.max()) <= 135


def test_luma_matches_pillow_exactly() -> None:
    x = _random(3, 3, 16, seed=1)
    ours = rgb_to_luma(x)
    for i in range(3):
        rgb = Image.fromarray(x[i].permute(1, 2, 0).numpy(), "RGB")
        np.testing.assert_array_equal(ours[i, 0].numpy(), np.asarray(rgb.convert("L")))


def test_to_geometry_channels() -> None:
    gray = _random(2, 1, 8)
    rgb = to_geometry(gray, 8, 3)
    assert rgb.shape == (2, 3, 8, 8) and rgb.is_contiguous()
    assert torch.equal(rgb[:, 0], gray[:, 0]) and torch.equal(rgb[:, 2], gray[:, 0])
    back = to_geometry(rgb, 16, 1)
    assert back.shape == (2, 1, 16, 16)
    # Equal R = G = B gives luma equal to that value (the weights sum to 65536).
    assert torch.equal(to_geometry(rgb, 8, 1), gray)
