"""DCGAN generator and discriminator (Radford, Metz & Chintala 2016) for any ``base * 2^k`` resolution.

Generator: ``z -> Linear -> [C0, base, base] -> BN -> ReLU -> (L-1) x (upsample, BN, ReLU) ->
upsample to the image channels -> tanh``, with ``L = log2(resolution / base)`` upsampling blocks.
Widths: the last hidden map has ``g_width`` channels, doubling per level towards the base, capped
at ``max_width``. At 64x64 with ``g_width=64`` this is the pytorch/examples DCGAN (512@4, 256@8,
128@16, 64@32, 3@64); its first ConvTranspose2d on a 1x1 latent is exactly our Linear.

Discriminator, the mirror image: strided convs halving the side down to the base (``d_width``
channels at the first, doubling per level, capped; no norm on the first; LeakyReLU 0.2), then
flatten -> Linear -> one logit per image. pytorch/examples ends with a valid ``base x base`` conv
and a Sigmoid; the Linear is the same maths, and the sigmoid lives in the loss.

Two optional mode-collapse remedies, off by default (the discriminator is then exactly the
above): ``d_pack = m > 1`` (PacGAN, Lin et al. 2018) makes D judge packs of ``m`` samples stacked
along channels, one logit per pack; ``d_mbstd = G > 0`` (Karras et al. 2018) appends the
minibatch-stddev feature map (:class:`~deconvgan.models.mbstd.MinibatchStdDev`) before the flatten.

Depth (``g_depth``, ``d_depth``, default 0): that many extra stride-1 3x3 conv -> norm -> activation
layers at each hidden resolution of G (after ``act{i}``: ``conv{i}_{j}``, ``norm{i}_{j}``, ``act{i}_{j}``)
and after each strided conv of D (same names). With 0 no module is added, so the parameters and their
seeded initial values are exactly those of the plain pair.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from deconvgan.config import ModelConfig, base_resolution
from deconvgan.errors import ConfigError
from deconvgan.models.init import init_weights
from deconvgan.models.mbstd import MinibatchStdDev
from deconvgan.models.upsample import make_upsample, transposed_padding

LEAKY_SLOPE = 0.2
DEPTH_KERNEL = 3  # the extra stride-1 layers of g_depth / d_depth: odd, so 'same' padding is symmetric


def depth_layers(prefix: str, channels: int, depth: int, norm: bool, act: Callable[[], nn.Module]) -> OrderedDict:
    """``depth`` x (3x3 stride-1 conv, BatchNorm if ``norm``, ``act()``) keeping ``[N, C, H, W]``.

    Named ``conv{prefix}_{j}``, ``norm{prefix}_{j}``, ``act{prefix}_{j}`` for j = 1..depth. A conv
    followed by BatchNorm takes no bias (BN's shift replaces it).
    """
    layers: OrderedDict[str, nn.Module] = OrderedDict()
    for j in range(1, depth + 1):
        layers[f"conv{prefix}_{j}"] = nn.Conv2d(channels, channels, DEPTH_KERNEL, 1, DEPTH_KERNEL // 2, bias=not norm)
        if norm:
            layers[f"norm{prefix}_{j}"] = nn.BatchNorm2d(channels)
        layers[f"act{prefix}_{j}"] = act()
    return layers


def num_levels(resolution: int) -> int:
    """Doublings from the base side to ``resolution`` (64 -> 4 from a base of 4; 28 -> 2 from 7)."""
    return (resolution // base_resolution(resolution)).bit_length() - 1


def generator_widths(cfg: ModelConfig) -> tuple[int, ...]:
    """Channels of the generator's hidden maps, from the base side up to ``resolution / 2``.

    Level ``i`` (side ``base * 2^i``) has ``min(max_width, g_width * 2^(L-1-i))`` channels.
    """
    levels = num_levels(cfg.resolution)
    return tuple(min(cfg.max_width, cfg.g_width * 2 ** (levels - 1 - i)) for i in range(levels))


def discriminator_widths(cfg: ModelConfig) -> tuple[int, ...]:
    """Channels after each strided conv, from side ``resolution / 2`` down to the base.

    Conv ``i`` (0-based) has ``min(max_width, d_width * 2^i)`` channels.
    """
    return tuple(min(cfg.max_width, cfg.d_width * 2**i) for i in range(num_levels(cfg.resolution)))


def apply_spectral_norm(model: nn.Module) -> nn.Module:
    """Wrap every conv/linear weight of ``model`` with spectral normalisation (Miyato et al. 2018)."""
    for module in list(model.modules()):
        if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            spectral_norm(module)
    return model


class DCGANGenerator(nn.Module):
    """``forward(z: [N, latent_dim]) -> [N, channels, resolution, resolution]`` in [-1, 1].

    ``widths`` overrides :func:`generator_widths` (one entry per level, base side first).
    Layers live in ``self.net`` (an ``nn.Sequential``): ``project``, ``reshape``, ``norm0``,
    ``act0``, then ``up{i}``, ``norm{i}``, ``act{i}`` for i = 1..L-1, and ``up{L}``, ``tanh``; with
    ``g_depth`` > 0, ``conv{i}_{j}``, ``norm{i}_{j}``, ``act{i}_{j}`` follow each ``act{i}`` (i = 0..L-1).
    """

    def __init__(self, cfg: ModelConfig, widths: Sequence[int] | None = None) -> None:
        super().__init__()
        self.config = cfg
        self.latent_dim = cfg.latent_dim
        base, levels = base_resolution(cfg.resolution), num_levels(cfg.resolution)
        widths = tuple(widths) if widths is not None else generator_widths(cfg)
        if len(widths) != levels:
            raise ConfigError(
                f"generator widths {widths} need {levels} entries for resolution {cfg.resolution}"
            )
        norm = cfg.g_norm == "batch"  # layers followed by BatchNorm take no bias (BN's shift replaces it)

        def up(c_in: int, c_out: int, bias: bool) -> nn.Module:
            return make_upsample(
                cfg.upsample, c_in, c_out, cfg.kernel_size, bias=bias, resize_mode=cfg.resize_mode
            )

        layers: OrderedDict[str, nn.Module] = OrderedDict()
        # [N, latent] -> [N, C0 * base * base]: DCGAN's first ConvTranspose2d on a 1x1 map, as a Linear
        layers["project"] = nn.Linear(cfg.latent_dim, widths[0] * base * base, bias=not norm)
        layers["reshape"] = nn.Unflatten(1, (widths[0], base, base))  # -> [N, C0, base, base]
        if norm:
            layers["norm0"] = nn.BatchNorm2d(widths[0])
        layers["act0"] = nn.ReLU()
        layers.update(depth_layers("0", widths[0], cfg.g_depth, norm, nn.ReLU))
        for i in range(1, levels):
            # [N, widths[i-1], base*2^(i-1), ...] -> [N, widths[i], base*2^i, base*2^i]
            layers[f"up{i}"] = up(widths[i - 1], widths[i], bias=not norm)
            if norm:
                layers[f"norm{i}"] = nn.BatchNorm2d(widths[i])
            layers[f"act{i}"] = nn.ReLU()
            layers.update(depth_layers(str(i), widths[i], cfg.g_depth, norm, nn.ReLU))
        # [N, widths[-1], R/2, R/2] -> [N, channels, R, R]: no norm, so keep the bias
        layers[f"up{levels}"] = up(widths[-1], cfg.channels, bias=True)
        layers["tanh"] = nn.Tanh()  # pixel values in [-1, 1], like the normalised data
        self.net = nn.Sequential(layers)
        init_weights(self)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


class DCGANDiscriminator(nn.Module):
    """``forward(x: [N, channels, R, R]) -> [N / d_pack]`` logits (no sigmoid: the loss applies it stably).

    ``widths`` overrides :func:`discriminator_widths`: one strided conv per entry, so fewer
    entries stop above the base side (the ``seed`` preset stops at 8x8). Layers live in
    ``self.net``: ``conv{i}``, ``norm{i}`` (i >= 2, when d_norm=batch), ``act{i}``, ``mbstd``
    (when d_mbstd > 0), ``flatten``, ``logit``; with ``d_depth`` > 0, ``conv{i}_{j}``, ``norm{i}_{j}``
    (when d_norm=batch), ``act{i}_{j}`` follow each ``act{i}``.
    With d_norm=spectral every conv and the final Linear carry a spectral-norm parametrization.

    Packing (``d_pack = m``): samples ``m*i .. m*i + m-1`` form pack ``i``, stacked along channels
    (``conv1`` takes ``channels * m`` inputs); ``N`` must be a multiple of ``m`` (ValueError). The
    losses average over logits, so packs need no other change in training; a pack of real images
    and a pack of fakes are what D separates.
    """

    def __init__(self, cfg: ModelConfig, widths: Sequence[int] | None = None) -> None:
        super().__init__()
        self.config = cfg
        widths = tuple(widths) if widths is not None else discriminator_widths(cfg)
        levels = num_levels(cfg.resolution)
        if not 1 <= len(widths) <= levels:
            raise ConfigError(
                f"discriminator widths {widths} need 1..{levels} entries for resolution {cfg.resolution}"
            )
        # Same padding as the generator's transposed conv: a stride-2 conv then halves an even side
        # exactly, and is the adjoint of the upsampling block with the same weights.
        padding, _ = transposed_padding(cfg.kernel_size, 2)
        batch_norm = cfg.d_norm == "batch"

        self.pack = cfg.d_pack
        layers: OrderedDict[str, nn.Module] = OrderedDict()
        side, c_in = cfg.resolution, cfg.channels * cfg.d_pack  # a pack: d_pack images along channels
        for i, c_out in enumerate(widths, start=1):
            side //= 2
            norm_here = batch_norm and i > 1  # DCGAN: no normalisation on the first layer
            # [N, c_in, 2 * side, 2 * side] -> [N, c_out, side, side]
            layers[f"conv{i}"] = nn.Conv2d(c_in, c_out, cfg.kernel_size, 2, padding, bias=not norm_here)
            if norm_here:
                layers[f"norm{i}"] = nn.BatchNorm2d(c_out)
            layers[f"act{i}"] = nn.LeakyReLU(LEAKY_SLOPE)
            layers.update(depth_layers(str(i), c_out, cfg.d_depth, batch_norm, lambda: nn.LeakyReLU(LEAKY_SLOPE)))
            c_in = c_out
        if cfg.d_mbstd > 0:
            # Before the final (dense) block, as in Karras et al.: D sees the batch's diversity as
            # one extra map and can penalise a collapsed generator. [N, c, s, s] -> [N, c + 1, s, s]
            layers["mbstd"] = MinibatchStdDev(cfg.d_mbstd)
            c_in += 1
        layers["flatten"] = nn.Flatten()  # [N, c_in * side * side]
        layers["logit"] = nn.Linear(c_in * side * side, 1)  # [N, 1]
        self.net = nn.Sequential(layers)
        init_weights(self)  # before spectral norm, so the init lands on the raw weights
        if cfg.d_norm == "spectral":
            apply_spectral_norm(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(pack_samples(x, self.pack)).squeeze(1)  # [N / m, 1] -> [N / m]


def pack_samples(x: torch.Tensor, pack: int) -> torch.Tensor:
    """PacGAN packing: ``[N, C, ...] -> [N / pack, pack * C, ...]``, pack ``i`` = samples ``pack*i ..``.

    A plain reshape: sample ``pack*i + j`` becomes channels ``j*C .. j*C + C-1`` of pack ``i``.
    Raises ValueError if ``N`` is not a multiple of ``pack``. ``pack = 1`` returns ``x`` itself.
    """
    if pack == 1:
        return x
    n = x.shape[0]
    if n % pack:
        raise ValueError(
            f"a batch of {n} samples does not split into packs of model.d_pack={pack}: "
            "use a batch size divisible by it"
        )
    return x.reshape(n // pack, pack * x.shape[1], *x.shape[2:])
