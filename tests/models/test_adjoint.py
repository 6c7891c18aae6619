"""Transposed convolution is the adjoint of convolution: <conv(x, h), y> == <x, conv_transpose(y, h)>."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from deconvgan.models.upsample import TransposedUpsample, transposed_padding

SETTINGS = settings(max_examples=60, deadline=None)


def inner(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a * b).sum())


def assert_close(a: float, b: float, scale: float) -> None:
    assert abs(a - b) <= 1e-10 * max(1.0, scale), (a, b)


@SETTINGS
@given(
    k=st.integers(1, 6), s=st.integers(1, 3), data=st.data(),
    c_in=st.integers(1, 4), c_out=st.integers(1, 4), h=st.integers(1, 9), w=st.integers(1, 9),
    seed=st.integers(0, 2**31 - 1),
)
def test_conv_transpose_is_adjoint_of_conv(
    k: int, s: int, data: st.DataObject, c_in: int, c_out: int, h: int, w: int, seed: int
) -> None:
    p = data.draw(st.integers(0, k - 1), label="padding")
    assume(h + 2 * p >= k and w + 2 * p >= k)  # the convolution has at least one output pixel
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(2, c_in, h, w, dtype=torch.float64, generator=gen)
    kernel = torch.randn(c_out, c_in, k, k, dtype=torch.float64, generator=gen)
    cx = F.conv2d(x, kernel, stride=s, padding=p)  # [2, c_out, ho, wo]
    y = torch.randn(cx.shape, dtype=torch.float64, generator=gen)
    # The transposed conv of a [ho, wo] map covers (ho-1)s - 2p + k pixels; the remainder of
    # (h + 2p - k) / s is the rows/cols the conv never reached, restored by output_padding (< s).
    op = ((h + 2 * p - k) % s, (w + 2 * p - k) % s)
    ty = F.conv_transpose2d(y, kernel, stride=s, padding=p, output_padding=op)
    assert ty.shape == x.shape
    assert_close(inner(cx, y), inner(x, ty), scale=float(cx.abs().sum() * y.abs().max()))


@SETTINGS
@given(
    k=st.integers(2, 6), c_small=st.integers(1, 4), c_big=st.integers(1, 4), side=st.integers(1, 8),
    data=st.data(), seed=st.integers(0, 2**31 - 1),
)
def test_upsample_block_is_adjoint_of_downsampling_conv(
    k: int, c_small: int, c_big: int, side: int, data: st.DataObject, seed: int
) -> None:
    """Our transposed block (bias 0) is the adjoint of the stride-2 Conv2d with the same weights
    and padding -- the discriminator's downsampling conv -- and both change the side by exactly 2x."""
    # For stride 2 exactly one padding doubles the side (ceil((k-2)/2) = floor((k-1)/2)); also pass
    # it explicitly, through the validated override.
    padding = data.draw(st.sampled_from([None, transposed_padding(k, 2)[0]]), label="padding")
    torch.manual_seed(seed)
    block = TransposedUpsample(c_small, c_big, k, padding=padding, bias=True).double()
    with torch.no_grad():
        block.conv.bias.zero_()
    p, _ = transposed_padding(k, 2, padding)
    down = torch.nn.Conv2d(c_big, c_small, k, stride=2, padding=p, bias=False).double()
    with torch.no_grad():
        down.weight.copy_(block.conv.weight)  # both [c_small, c_big, k, k]
    x = torch.randn(3, c_big, 2 * side, 2 * side, dtype=torch.float64)
    y = torch.randn(3, c_small, side, side, dtype=torch.float64)
    with torch.no_grad():
        dx, uy = down(x), block(y)
    assert dx.shape == y.shape and uy.shape == x.shape
    assert_close(inner(dx, y), inner(x, uy), scale=float(dx.abs().sum() * y.abs().max()))
