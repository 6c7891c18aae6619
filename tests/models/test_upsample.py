"""The upsampling block: exact scaling for every mode and kernel size, padding validation, ICNR."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from deconvgan.errors import ConfigError
from deconvgan.models.init import init_weights
from deconvgan.models.upsample import (
    PixelShuffleUpsample,
    ResizeConvUpsample,
    TransposedUpsample,
    make_upsample,
    same_padding,
    transposed_padding,
)

MODES = ("transposed", "resize", "pixelshuffle")


@settings(max_examples=60, deadline=None)
@given(
    mode=st.sampled_from(MODES), resize_mode=st.sampled_from(["nearest", "bilinear"]),
    scale=st.integers(2, 3), extra=st.integers(0, 5), c_in=st.integers(1, 3), c_out=st.integers(1, 3),
    h=st.integers(1, 7), w=st.integers(1, 7),
)
def test_every_mode_scales_exactly(
    mode: str, resize_mode: str, scale: int, extra: int, c_in: int, c_out: int, h: int, w: int
) -> None:
    k = scale + extra  # any kernel size k >= stride
    block = make_upsample(mode, c_in, c_out, k, scale=scale, resize_mode=resize_mode)
    with torch.no_grad():
        out = block(torch.randn(2, c_in, h, w))
    assert out.shape == (2, c_out, scale * h, scale * w)


@pytest.mark.parametrize("k", range(2, 8))
def test_transposed_padding_default_and_override(k: int) -> None:
    p, op = transposed_padding(k, 2)
    assert (p, op) == ((k - 1) // 2, k % 2)  # odd k needs one row of output_padding
    assert transposed_padding(k, 2, p) == (p, op)
    for bad in (p - 1, p + 1):
        with pytest.raises(ConfigError, match="cannot multiply the side"):
            transposed_padding(k, 2, bad)
        with pytest.raises(ConfigError, match="cannot multiply the side"):
            TransposedUpsample(2, 2, k, padding=bad)


def test_stride_three_accepts_every_valid_padding() -> None:
    # k=5, s=3: op = 3 - 5 + 2p must lie in 0..2, so p in {1, 2}; both triple the side.
    for p in (1, 2):
        block = TransposedUpsample(1, 1, 5, scale=3, padding=p)
        assert block(torch.randn(1, 1, 5, 4)).shape == (1, 1, 15, 12)
    with pytest.raises(ConfigError, match="use padding in 1..2"):
        TransposedUpsample(1, 1, 5, scale=3, padding=3)


def test_invalid_arguments_raise_config_error() -> None:
    with pytest.raises(ConfigError, match="kernel_size=1 < stride=2"):
        transposed_padding(1, 2)
    with pytest.raises(ConfigError, match="no padding can"):
        transposed_padding(4, 1)  # stride 1, even kernel: op would have to be 1 >= stride
    with pytest.raises(ConfigError, match="only to upsample=transposed"):
        make_upsample("resize", 1, 1, 3, padding=1)
    with pytest.raises(ConfigError, match="not one of"):
        make_upsample("deconv", 1, 1, 3)
    with pytest.raises(ConfigError, match="not one of"):
        ResizeConvUpsample(1, 1, 3, mode="bicubic")


@pytest.mark.parametrize("k", [3, 4])
def test_same_padding(k: int) -> None:
    left, right, top, bottom = same_padding(k)
    assert left + right == top + bottom == k - 1 and right - left in (0, 1)
    block = ResizeConvUpsample(2, 3, k, mode="bilinear")
    assert block(torch.randn(1, 2, 5, 6)).shape == (1, 3, 10, 12)


@pytest.mark.parametrize("scale,k", [(2, 3), (2, 4), (3, 5)])
def test_icnr_starts_as_nearest_upsampling(scale: int, k: int) -> None:
    """At init every scale x scale block of the output is constant: no checkerboard."""
    torch.manual_seed(0)
    block = init_weights(PixelShuffleUpsample(3, 2, k, scale=scale))
    x = torch.randn(2, 3, 5, 5)
    with torch.no_grad():
        out = block(x)  # [2, 2, 5s, 5s]
        corner = out[:, :, ::scale, ::scale]  # one pixel per block
        nearest = corner.repeat_interleave(scale, dim=2).repeat_interleave(scale, dim=3)
        assert torch.equal(out, nearest)
        assert out.std() > 0  # not trivially constant
        # ...namely nearest upsampling of the stride-1 conv with the shared (first) sub-kernel
        shared = block.conv.weight[:: scale * scale]  # [2, 3, k, k]
        conv = torch.nn.functional.conv2d(block.pad(x), shared, block.conv.bias[:: scale * scale],
                                          padding=block.conv.padding)
        torch.testing.assert_close(out, torch.nn.functional.interpolate(conv, scale_factor=scale))


def test_default_init_is_not_icnr() -> None:
    """Sanity check of the property above: without ICNR the sub-pixel kernels differ."""
    torch.manual_seed(0)
    block = PixelShuffleUpsample(3, 2, 3)
    with torch.no_grad():
        out = block(torch.randn(1, 3, 4, 4))
    assert not torch.equal(out[:, :, 0::2, 0::2], out[:, :, 1::2, 1::2])
