"""The generator's upsampling block: multiply the side of a feature map by ``scale`` exactly.

Three interchangeable modes, all mapping ``[N, C_in, H, W] -> [N, C_out, scale*H, scale*W]`` for
any kernel size ``k >= scale``:

* ``transposed`` -- a strided transposed convolution ("deconvolution"), the adjoint of the strided
  convolution the discriminator downsamples with.
* ``resize`` -- nearest/bilinear resize, then a stride-1 convolution with 'same' output size
  (Odena, Dumoulin & Olah 2016, "Deconvolution and Checkerboard Artifacts").
* ``pixelshuffle`` -- a stride-1 convolution to ``C_out * scale^2`` channels, then
  :class:`torch.nn.PixelShuffle` (sub-pixel convolution), ICNR-initialised (Aitken et al. 2017) by
  :func:`deconvgan.models.init.init_weights` so that it starts free of checkerboard artifacts.

Every block keeps its convolution in ``.conv`` (weights are what the init and the tests touch).
"""

from __future__ import annotations

import torch
from torch import nn

from deconvgan.config import RESIZE_MODES, UPSAMPLERS
from deconvgan.errors import ConfigError


def transposed_padding(kernel_size: int, stride: int = 2, padding: int | None = None) -> tuple[int, int]:
    """``(padding, output_padding)`` for which ``ConvTranspose2d`` multiplies the side by ``stride``.

    The output side is ``(in - 1) * s - 2p + k + op``; it equals ``in * s`` iff ``op = s - k + 2p``,
    and PyTorch needs ``0 <= op < s``. The default ``p = ceil((k - s) / 2)`` gives ``op`` in {0, 1}.
    An explicit ``padding`` is accepted only if it also gives an exact multiple (ConfigError if not).
    The same ``p`` makes a stride-``s`` ``Conv2d`` divide an ``s``-divisible side by ``s`` exactly,
    which is why the discriminator's downsampling conv is this block's adjoint.
    """
    if stride < 1:
        raise ConfigError(f"upsampling stride={stride} must be >= 1")
    if kernel_size < stride:
        raise ConfigError(
            f"kernel_size={kernel_size} < stride={stride}: a transposed convolution would leave output "
            "pixels no kernel tap reaches; use kernel_size >= stride"
        )
    if padding is None:
        padding = (kernel_size - stride + 1) // 2  # ceil((k - s) / 2) for k >= s
    output_padding = stride - kernel_size + 2 * padding
    if padding < 0 or not 0 <= output_padding < stride:
        lo, hi = (kernel_size - stride + 1) // 2, (kernel_size - 1) // 2
        fix = f"use padding in {lo}..{hi}" if lo <= hi else "no padding can: change the kernel size"
        raise ConfigError(
            f"padding={padding} with kernel_size={kernel_size}, stride={stride} cannot multiply the side "
            f"by exactly {stride}; {fix}"
        )
    return padding, output_padding


def same_padding(kernel_size: int) -> tuple[int, int, int, int]:
    """``(left, right, top, bottom)`` zero padding keeping the size of a stride-1 convolution.

    Odd kernels pad ``k // 2`` on each side; even kernels need ``k - 1`` in total, so one side gets
    one more (the right/bottom one, as ``padding='same'`` does in PyTorch).
    """
    before = (kernel_size - 1) // 2
    after = kernel_size - 1 - before
    return (before, after, before, after)


def _same_conv(
    in_channels: int, out_channels: int, kernel_size: int, bias: bool
) -> tuple[nn.Module, nn.Conv2d]:
    """A stride-1 conv with 'same' output size, as ``(pad, conv)``.

    Odd kernels pad inside the conv (``pad`` is Identity); even kernels get an explicit asymmetric
    ``ZeroPad2d``, which exports to ONNX everywhere, unlike ``padding='same'`` with even kernels.
    """
    left, right, top, bottom = same_padding(kernel_size)
    if left == right:
        return nn.Identity(), nn.Conv2d(in_channels, out_channels, kernel_size, padding=left, bias=bias)
    pad = nn.ZeroPad2d((left, right, top, bottom))
    return pad, nn.Conv2d(in_channels, out_channels, kernel_size, padding=0, bias=bias)


class TransposedUpsample(nn.Module):
    """``ConvTranspose2d(k, stride=scale)`` with padding/output_padding chosen for an exact ``scale``x.

    Attributes: ``conv`` (the ``nn.ConvTranspose2d``; weight ``[C_in, C_out, k, k]``).
    """

    def __init__(
        self, in_channels: int, out_channels: int, kernel_size: int, *, scale: int = 2,
        bias: bool = True, padding: int | None = None,
    ) -> None:
        super().__init__()
        padding, output_padding = transposed_padding(kernel_size, scale, padding)
        self.scale = scale
        self.conv = nn.ConvTranspose2d(
            in_channels, out_channels, kernel_size, stride=scale, padding=padding,
            output_padding=output_padding, bias=bias,
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)  # [N, C_in, H, W] -> [N, C_out, sH, sW]


class ResizeConvUpsample(nn.Module):
    """Resize by ``scale`` (nearest or bilinear), then a 'same' stride-1 conv (Odena et al. 2016).

    Every output pixel sees the same number of kernel taps, so unlike a transposed conv with
    ``k`` not divisible by the stride it cannot produce checkerboard patterns.
    Attributes: ``resize`` (``nn.Upsample``), ``pad`` (Identity or ``ZeroPad2d``), ``conv``.
    """

    def __init__(
        self, in_channels: int, out_channels: int, kernel_size: int, *, scale: int = 2,
        bias: bool = True, mode: str = "nearest",
    ) -> None:
        super().__init__()
        if mode not in RESIZE_MODES:
            raise ConfigError(f"resize mode={mode!r} is not one of {', '.join(RESIZE_MODES)}")
        self.scale = scale
        # align_corners=False: the resized grid is the input grid scaled about pixel centres.
        self.resize = nn.Upsample(
            scale_factor=scale, mode=mode, align_corners=False if mode == "bilinear" else None
        )
        self.pad, self.conv = _same_conv(in_channels, out_channels, kernel_size, bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.resize(x)  # [N, C_in, sH, sW]
        return self.conv(self.pad(x))  # [N, C_out, sH, sW]


class PixelShuffleUpsample(nn.Module):
    """'Same' stride-1 conv to ``C_out * scale^2`` channels, then ``PixelShuffle(scale)``.

    Output channel ``c`` at sub-pixel position ``(i, j)`` comes from conv channel
    ``c * scale^2 + i * scale + j``; ICNR init (see :func:`deconvgan.models.init.icnr_`) makes those
    ``scale^2`` kernels equal, so at init this block is nearest upsampling of a stride-1 conv.
    Attributes: ``pad``, ``conv``, ``shuffle``.
    """

    def __init__(
        self, in_channels: int, out_channels: int, kernel_size: int, *, scale: int = 2, bias: bool = True,
    ) -> None:
        super().__init__()
        self.scale = scale
        self.pad, self.conv = _same_conv(in_channels, out_channels * scale * scale, kernel_size, bias)
        self.shuffle = nn.PixelShuffle(scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(self.pad(x))  # [N, C_out * s^2, H, W]
        return self.shuffle(x)  # [N, C_out, sH, sW]


def make_upsample(
    mode: str, in_channels: int, out_channels: int, kernel_size: int, *, scale: int = 2,
    bias: bool = True, resize_mode: str = "nearest", padding: int | None = None,
) -> nn.Module:
    """One upsampling block ``[N, C_in, H, W] -> [N, C_out, scale*H, scale*W]`` of the given mode.

    ``padding`` overrides the transposed conv's padding (validated to still scale exactly); the
    other modes always use 'same' padding and refuse an override.
    """
    if padding is not None and mode != "transposed":
        raise ConfigError(f"a padding override applies only to upsample=transposed, not {mode!r}")
    if mode == "transposed":
        return TransposedUpsample(
            in_channels, out_channels, kernel_size, scale=scale, bias=bias, padding=padding
        )
    if mode == "resize":
        return ResizeConvUpsample(
            in_channels, out_channels, kernel_size, scale=scale, bias=bias, mode=resize_mode
        )
    if mode == "pixelshuffle":
        return PixelShuffleUpsample(in_channels, out_channels, kernel_size, scale=scale, bias=bias)
    raise ConfigError(f"upsample={mode!r} is not one of {', '.join(UPSAMPLERS)}")
