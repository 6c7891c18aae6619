"""Textures window by window: equal to one whole pass, seamless when tileable, streamed to PNG."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from deconvgan.config import ModelConfig
from deconvgan.errors import ConfigError
from deconvgan.models import build_generator, fuse_for_inference
from deconvgan.tiles import (
    check_texture_size,
    generate_texture,
    generate_window,
    to_pixels,
    whole_texture,
    write_texture_png,
)

# Float rounding only: a window and the whole image go through convolutions of different sizes, whose
# kernels sum in different orders (and split the work between threads differently).
TOLERANCE = 1e-4


def texture_model(**overrides) -> nn.Module:
    cfg = ModelConfig(**(dict(arch="spatial", resolution=32, channels=3, levels=3, g_width=8, local_channels=4,
                              global_channels=2) | overrides))
    torch.manual_seed(0)
    G = build_generator(cfg)
    with torch.no_grad():  # larger weights and non-trivial batch-norm statistics: outputs far from 0
        for module in G.modules():
            if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
                module.weight.normal_(0, 0.3)
            if isinstance(module, nn.BatchNorm2d):
                module.running_mean.uniform_(-0.2, 0.2)
                module.running_var.uniform_(0.5, 2.0)
    return fuse_for_inference(G)


@pytest.mark.parametrize("mode", ["transposed", "resize", "pixelshuffle"])
@pytest.mark.parametrize("tileable", [False, True])
def test_tiles_equal_one_whole_pass(mode, tileable):
    G = texture_model(upsample=mode, tileable=tileable, periodic_channels=0 if tileable else 2)
    whole = whole_texture(G, 5, 96, 160, tileable=tileable)
    tiled = generate_texture(G, 5, 96, 160, tileable=tileable, tile=32)
    assert whole.std() > 0.2
    torch.testing.assert_close(tiled, whole, atol=TOLERANCE, rtol=0)


def test_a_margin_one_cell_short_is_wrong():
    """The margin is needed: one cell less and the tiles no longer agree with the whole image."""
    G = texture_model()
    whole = whole_texture(G, 5, 64, 64)
    G.margin -= 1
    assert (generate_texture(G, 5, 64, 64, tile=16) - whole).abs().max() > 100 * TOLERANCE


def test_tileable_texture_repeats_with_its_size():
    """The window one period further holds the same pixels: the 2x2 tiling has no seam at all."""
    G = texture_model(tileable=True)
    tile = generate_texture(G, 2, 48, 64, tileable=True)
    shifted = generate_window(G, 2, 48, 64, 48, 64, period=(48, 64))
    torch.testing.assert_close(shifted, tile, atol=TOLERANCE, rtol=0)
    straddling = generate_window(G, 2, 24, 32, 48, 64, period=(48, 64))  # across both seams
    torch.testing.assert_close(straddling, torch.roll(tile, (-24, -32), dims=(1, 2)), atol=TOLERANCE, rtol=0)


def test_unbounded_texture_windows_agree_where_they_overlap():
    G = texture_model()
    a = generate_window(G, 9, -64, 40, 64, 64)
    b = generate_window(G, 9, -32, 72, 64, 64)
    torch.testing.assert_close(a[:, 32:, 32:], b[:, :32, :32], atol=TOLERANCE, rtol=0)


@pytest.mark.parametrize("bits", [8, 16])
def test_png_holds_the_generated_pixels(tmp_path, bits):
    G = texture_model(tileable=True)
    path = write_texture_png(G, 1, 48, 80, tmp_path / "t.png", tileable=True, bits=bits, tile=16)
    expected = to_pixels(generate_texture(G, 1, 48, 80, tileable=True, tile=16), bits)  # the same tiles
    with Image.open(path) as image:
        assert image.size == (80, 48)
        got = np.asarray(image) if bits == 8 else _read_png16(path)
    np.testing.assert_array_equal(got, expected)


def _read_png16(path) -> np.ndarray:
    import zlib

    data = path.read_bytes()
    pos, idat = 8, b""
    while pos < len(data):
        length = int.from_bytes(data[pos:pos + 4], "big")
        kind, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            width, height = int.from_bytes(body[:4], "big"), int.from_bytes(body[4:8], "big")
            assert body[8] == 16 and body[9] == 2
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    raw = np.frombuffer(zlib.decompress(idat), np.uint8).reshape(height, 1 + width * 6)
    assert (raw[:, 0] == 1).all()  # every row uses the Sub filter
    rows = raw[:, 1:].copy()
    for x in range(6, rows.shape[1]):  # undo Sub: add the byte one pixel to the left
        rows[:, x] += rows[:, x - 6]
    return rows.view(">u2").reshape(height, width, 3).astype(np.uint16)


def test_sizes_must_be_multiples_of_the_stride():
    G = texture_model()
    with pytest.raises(ConfigError, match="texture width 100 is not a positive multiple of the generator's stride 8"):
        check_texture_size(G, 64, 100)
    with pytest.raises(ConfigError, match="ending in .png"):
        write_texture_png(G, 0, 64, 64, "out.jpg")


def test_whole_image_models_have_no_textures():
    with pytest.raises(ConfigError, match="need a texture model"):
        check_texture_size(build_generator(ModelConfig()), 64, 64)
