"""Fully convolutional texture models: a latent *field* in, an image of any size out.

The generator (Spatial GAN, Jetchev et al. 2016; PSGAN, Bergmann et al. 2017) has no dense layer:
its input is a latent field ``[N, C_z, h, w]`` and ``levels`` stride-2 upsampling blocks turn it
into ``[N, channels, h * 2^levels, w * 2^levels]``. Any field size gives the matching image size,
so a model trained on 128-pixel crops draws 4096-pixel textures. The field's channels, in order
(see :mod:`deconvgan.latents`):

* ``local_channels``: i.i.d. normal per position (what varies across the texture);
* ``global_channels``: one normal vector per image, the same at every position (its "style");
* ``periodic_channels`` (PSGAN): each becomes ``sin(k . (y, x) + phi)``; the wave vector ``k`` is a
  small learned function of the global channels and the phase ``phi = 2 pi Phi(u)`` comes from one
  more normal channel ``u`` per periodic channel; the field then carries two coordinate channels
  (absolute cell positions, y then x) so that any window of an unbounded texture is addressable.

With ``tileable`` every upsampling block wraps around: its input is padded circularly by exactly
the cells its kernel reaches across the edge and the output cropped back (for a transposed
convolution this is the same as adding the overlap that falls off one edge to the other). Applied
to a periodic field the generator is then exactly periodic: the right edge continues into the left.

The discriminator is fully convolutional too (PatchGAN-style): ``levels`` strided convolutions and
a 3x3 convolution to one logit per patch, ``[N, C, H, W] -> [N, P]``; the losses average over all
patches. Its receptive field is :func:`patch_receptive_field`.
"""

from __future__ import annotations

import math
from collections import OrderedDict

import torch
import torch.nn.functional as F
from torch import nn

from deconvgan.config import ModelConfig
from deconvgan.models.dcgan import LEAKY_SLOPE, apply_spectral_norm
from deconvgan.models.init import init_weights
from deconvgan.models.upsample import TransposedUpsample, make_upsample, same_padding, transposed_padding

WAVE_HIDDEN = 64  # hidden units of the MLP from global channels to wave vectors (PSGAN: 60)
SCALE = 2  # every block doubles the side


def field_channels(cfg: ModelConfig) -> int:
    """Channels of the latent field a spatial generator takes (local, global, phases, coordinates)."""
    periodic = cfg.periodic_channels
    return cfg.local_channels + cfg.global_channels + periodic + (2 if periodic else 0)


def field_side(cfg: ModelConfig) -> int:
    """Cells per side of the training field: ``resolution / 2^levels`` (the crop's side in cells)."""
    return cfg.resolution // 2**cfg.levels


def spatial_generator_widths(cfg: ModelConfig) -> tuple[int, ...]:
    """Output channels of each hidden block: ``g_width`` at the last, doubling towards the field."""
    return tuple(min(cfg.max_width, cfg.g_width * 2 ** (cfg.levels - 2 - i)) for i in range(cfg.levels - 1))


def block_reach(mode: str, kernel_size: int, resize_mode: str = "nearest") -> tuple[int, int]:
    """``(before, after)``: input cells beyond each edge that an upsampling block's output reads.

    A block computed on an input padded by these many cells on each side (circularly, or from a
    larger field) and cropped back by ``SCALE`` times as many output pixels gives the exact values
    of the unbounded (or periodic) map. Derived from the block's index arithmetic:

    * transposed (padding p): output o reads inputs ``ceil((o + p - k + 1) / s) .. floor((o + p) / s)``;
    * resize: a 'same' convolution at the output side, after nearest (or bilinear: one cell more) resize;
    * pixelshuffle: a 'same' convolution at the input side.
    """
    k, s = kernel_size, SCALE
    if mode == "transposed":
        p, _ = transposed_padding(k, s)
        return (k - 1 - p) // s, (p - 1) // s + 1  # floor division: 0 for p = 0
    before, after, _, _ = same_padding(k)
    if mode == "resize":
        extra = 1 if resize_mode == "bilinear" else 0
        return -(-before // s) + extra, (s - 1 + after) // s + extra
    if mode == "pixelshuffle":
        return before, after
    raise ValueError(f"unknown upsample mode {mode!r}")


def border_error(mode: str, kernel_size: int, resize_mode: str, wrong: int) -> int:
    """Output pixels next to an edge that are wrong when ``wrong`` input pixels there (and everything
    beyond the edge) are wrong: the larger of the two sides. Zero padding and a circular pad are both
    "wrong" beyond the edge of a window, so this bounds what a window computation gets wrong.

    * transposed (padding p): input i writes outputs ``i s - p .. i s - p + k - 1``, so the left side
      loses ``wrong * s + k - p - s`` pixels and the right ``wrong * s + p``;
    * resize: ``wrong * s`` resized pixels (bilinear: one input pixel more), then a 'same' conv adds its reach;
    * pixelshuffle: a 'same' conv at the input side, then each pixel becomes ``s`` pixels.
    """
    k, s = kernel_size, SCALE
    if mode == "transposed":
        p, _ = transposed_padding(k, s)
        return max(wrong * s + k - p - s, wrong * s + p, 0)
    before, after, _, _ = same_padding(k)
    if mode == "resize":
        resized = (wrong + (1 if resize_mode == "bilinear" else 0)) * s
        return resized + max(before, after)
    if mode == "pixelshuffle":
        return (wrong + max(before, after)) * s
    raise ValueError(f"unknown upsample mode {mode!r}")


def margin_cells(cfg: ModelConfig) -> int:
    """Field cells around a window that make its interior exact.

    Computing a window of the field on its own gets the pixels near its edges wrong (the field beyond
    them is missing); :func:`border_error` follows how far that reaches through the ``levels`` blocks.
    A window padded by this many cells on every side, run through the generator and cropped by
    ``margin * 2^levels`` pixels, equals the same region of the whole image: tiled generation relies on it.
    """
    wrong = 0
    for _ in range(cfg.levels):
        wrong = border_error(cfg.upsample, cfg.kernel_size, cfg.resize_mode, wrong)
    return math.ceil(wrong / 2**cfg.levels)


class CircularPad(nn.Module):
    """Pad ``[N, C, H, W]`` circularly by ``(before, after)`` on both spatial axes."""

    def __init__(self, before: int, after: int) -> None:
        super().__init__()
        self.before, self.after = before, after

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, a = self.before, self.after
        h, w = x.shape[-2:]
        if max(b, a) <= min(h, w):
            return F.pad(x, (b, a, b, a), mode="circular") if b or a else x
        # a map smaller than the pad (a field of one or two cells) wraps around more than once
        rows = torch.arange(-b, h + a, device=x.device) % h
        cols = torch.arange(-b, w + a, device=x.device) % w
        return x.index_select(2, rows).index_select(3, cols)


class Crop(nn.Module):
    """Drop ``before`` pixels at the start and ``after`` at the end of both spatial axes."""

    def __init__(self, before: int, after: int) -> None:
        super().__init__()
        self.before, self.after = before, after

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        return x[..., self.before:h - self.after, self.before:w - self.after]


class CircularTransposedUpsample(TransposedUpsample):
    """The stride-2 transposed convolution on a torus: the overlap that falls off one edge is added
    to the other, so a periodic input gives the periodic output exactly, at no extra convolution cost.

    The full (unpadded) output has ``(h - 1) s + k`` rows; row ``u`` is output row ``u - p`` (p: the
    block's padding), taken modulo ``T = h s``. ``.conv`` holds the weights as in the plain block, so
    batch norm folds into it the same way.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        conv = self.conv
        full = F.conv_transpose2d(x, conv.weight, None, stride=conv.stride)  # [N, C, (h-1)s+k, (w-1)s+k]
        p = conv.padding[0]
        for dim in (2, 3):
            period = x.shape[dim] * self.scale  # T
            size = full.shape[dim]
            if max(p, size - p - period) > period:  # a tiny map under a large kernel wraps more than once
                where = (torch.arange(size, device=full.device) - p) % period
                shape = list(full.shape)
                shape[dim] = period
                full = full.new_zeros(shape).index_add_(dim, where, full)
                continue
            # In place on views of `full`, a temporary of this call: the rows added from (the overhangs)
            # and the rows added to never overlap, since the period T is at least p and the overhang.
            wrapped = full.narrow(dim, p, period)  # rows p .. p + T - 1: outputs 0 .. T - 1
            if p:  # rows 0 .. p - 1 are outputs -p .. -1: they wrap to T - p .. T - 1
                wrapped.narrow(dim, period - p, p).add_(full.narrow(dim, 0, p))
            over = size - p - period  # rows past the end: outputs T .. wrap to 0 ..
            if over:
                wrapped.narrow(dim, 0, over).add_(full.narrow(dim, p + period, over))
            full = wrapped
        if conv.bias is not None:  # after the wrap, or the overlap would carry it twice; in place: no new map
            full = full.add_(conv.bias[:, None, None]) if not full.requires_grad else full + conv.bias[:, None, None]
        return full


class FieldInput(nn.Module):
    """Latent field -> the first block's input: local and global channels as they are, and for
    PSGAN's periodic channels ``sin(k(g) . (y, x) + 2 pi Phi(u))``.

    ``[N, field_channels, h, w] -> [N, local + global + periodic, h, w]``. Every operation is per
    position (1x1), so a window of the field gives the same values as the whole field there.
    """

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.local, self.glob, self.periodic = cfg.local_channels, cfg.global_channels, cfg.periodic_channels
        if self.periodic:
            # wave vectors from the global channels (constant over space, so the same everywhere)
            self.wave = nn.Sequential(
                nn.Conv2d(self.glob, WAVE_HIDDEN, 1), nn.ReLU(), nn.Conv2d(WAVE_HIDDEN, 2 * self.periodic, 1),
            )

    def forward(self, field: torch.Tensor) -> torch.Tensor:
        if not self.periodic:
            return field
        n_lg = self.local + self.glob
        g = field[:, self.local:n_lg]  # [N, G, h, w]
        u = field[:, n_lg:n_lg + self.periodic]  # [N, P, h, w] normal -> uniform phase
        coords = field[:, n_lg + self.periodic:]  # [N, 2, h, w]: y, x in cells
        k = self.wave(g)  # [N, 2P, h, w]: k_y then k_x per periodic channel
        ky, kx = k[:, 0::2], k[:, 1::2]
        phase = 2 * math.pi * 0.5 * (1 + torch.erf(u / math.sqrt(2)))  # Phi(u) in (0, 1) -> (0, 2 pi)
        periodic = torch.sin(ky * coords[:, :1] + kx * coords[:, 1:] + phase)  # [N, P, h, w]
        return torch.cat([field[:, :n_lg], periodic], dim=1)


class SpatialGenerator(nn.Module):
    """``forward(field: [N, field_channels, h, w]) -> [N, channels, h * 2^L, w * 2^L]`` in [-1, 1].

    Layers: ``input`` (:class:`FieldInput`), then ``self.net``: for each block i = 1..L,
    ``wrap{i}`` (tileable resize/pixelshuffle only), ``up{i}`` (tileable transposed:
    :class:`CircularTransposedUpsample`), ``norm{i}`` and ``act{i}`` (hidden blocks), ``crop{i}``
    (with ``wrap{i}``), and ``tanh``. The crop comes after the pointwise norm and activation, so the
    batch norm stays next to the convolution it folds into (:func:`~deconvgan.models.fuse_for_inference`).
    Batch norm normalises per channel over batch and positions, so it does not depend on the field size.
    """

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.config = cfg
        self.latent_dim = field_channels(cfg)  # channels of the latent field
        self.scale = 2**cfg.levels  # pixels per field cell
        self.margin = margin_cells(cfg)
        self.input = FieldInput(cfg)
        widths = (*spatial_generator_widths(cfg), cfg.channels)
        norm = cfg.g_norm == "batch"
        before, after = block_reach(cfg.upsample, cfg.kernel_size, cfg.resize_mode)
        layers: OrderedDict[str, nn.Module] = OrderedDict()
        c_in = cfg.local_channels + cfg.global_channels + cfg.periodic_channels
        # Tileable blocks: a transposed convolution wraps its overlap around itself; the other modes
        # get a circular pad of the cells they reach across the edge, and a crop after the pointwise layers.
        pad_and_crop = cfg.tileable and cfg.upsample != "transposed"
        for i, c_out in enumerate(widths, start=1):
            last = i == len(widths)
            if pad_and_crop:
                layers[f"wrap{i}"] = CircularPad(before, after)
            # [N, c_in, s, s] -> [N, c_out, 2s, 2s]
            if cfg.tileable and cfg.upsample == "transposed":
                layers[f"up{i}"] = CircularTransposedUpsample(c_in, c_out, cfg.kernel_size, bias=last or not norm)
            else:
                layers[f"up{i}"] = make_upsample(cfg.upsample, c_in, c_out, cfg.kernel_size,
                                                 bias=last or not norm, resize_mode=cfg.resize_mode)
            if not last:
                if norm:
                    layers[f"norm{i}"] = nn.BatchNorm2d(c_out)
                layers[f"act{i}"] = nn.ReLU(inplace=True)  # nothing needs the map before it: save a pass
            if pad_and_crop:
                layers[f"crop{i}"] = Crop(SCALE * before, SCALE * after)
            c_in = c_out
        layers["tanh"] = nn.Tanh()
        self.net = nn.Sequential(layers)
        init_weights(self)

    def forward(self, field: torch.Tensor) -> torch.Tensor:
        return self.net(self.input(field))


def patch_receptive_field(cfg: ModelConfig) -> int:
    """Pixels per side that one patch logit of :class:`PatchDiscriminator` sees."""
    field = 3  # the final 3x3 convolution
    for _ in range(cfg.levels):
        field = (field - 1) * SCALE + cfg.kernel_size
    return field


class PatchDiscriminator(nn.Module):
    """``forward(x: [N, C, H, W]) -> [N, P]``: one logit per patch, P = (H / 2^L) * (W / 2^L).

    ``conv{i}`` (stride 2, the generator's padding, so the side halves exactly), ``norm{i}`` (i >= 2,
    d_norm=batch), ``act{i}``, then ``logit`` (3x3, one channel). Widths ``d_width * 2^(i-1)`` capped at
    ``max_width``; with d_norm=spectral every convolution is spectrally normalised.
    """

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.config = cfg
        self.receptive_field = patch_receptive_field(cfg)
        padding, _ = transposed_padding(cfg.kernel_size, SCALE)
        batch_norm = cfg.d_norm == "batch"
        layers: OrderedDict[str, nn.Module] = OrderedDict()
        c_in = cfg.channels
        for i in range(1, cfg.levels + 1):
            c_out = min(cfg.max_width, cfg.d_width * 2 ** (i - 1))
            norm_here = batch_norm and i > 1
            layers[f"conv{i}"] = nn.Conv2d(c_in, c_out, cfg.kernel_size, SCALE, padding, bias=not norm_here)
            if norm_here:
                layers[f"norm{i}"] = nn.BatchNorm2d(c_out)
            layers[f"act{i}"] = nn.LeakyReLU(LEAKY_SLOPE)
            c_in = c_out
        layers["logit"] = nn.Conv2d(c_in, 1, 3, padding=1)  # [N, 1, H / 2^L, W / 2^L]
        layers["flatten"] = nn.Flatten()  # [N, P]
        self.net = nn.Sequential(layers)
        init_weights(self)
        if cfg.d_norm == "spectral":
            apply_spectral_norm(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)
