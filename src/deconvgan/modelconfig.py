"""The ``model`` section of the configuration: the architecture a snapshot carries with its weights.

Part of the schema (:mod:`deconvgan.config` holds the other sections and the whole :class:`Config`,
and re-exports everything here). Also the two validators every section uses.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from deconvgan.errors import ConfigError

UPSAMPLERS = ("transposed", "resize", "pixelshuffle")  # each built by models.upsample.make_upsample
RESIZE_MODES = ("nearest", "bilinear")  # torch interpolation modes of upsample=resize
ARCHITECTURES = ("dcgan", "seed", "mlp", "spatial")
CONDITIONAL_ARCHITECTURES = ("dcgan", "spatial")  # model.num_classes > 0: see models.conditional
G_NORMS = ("batch", "none")
D_NORMS = ("batch", "spectral", "none")
MLP_ACTIVATIONS = ("sigmoid", "tanh", "relu")


def check_choice(key: str, value: str, choices: tuple[str, ...]) -> None:
    """One-line ConfigError unless ``value`` is one of ``choices``."""
    if value not in choices:
        raise ConfigError(f"{key}={value!r} is not one of {', '.join(choices)}")


def check_positive(key: str, value: float, *, allow_zero: bool = False) -> None:
    """One-line ConfigError unless ``value`` is finite and > 0 (>= 0 with ``allow_zero``)."""
    if not math.isfinite(value):  # NaN passes both comparisons below, and infinity is no length or rate
        raise ConfigError(f"{key}={value!r} must be a finite number")
    if value < 0 or (value == 0 and not allow_zero):
        raise ConfigError(f"{key}={value!r} must be {'>= 0' if allow_zero else '> 0'}")


def check_in_range(key: str, value: float, low: float, high: float, *, open_low: bool = False,
                   open_high: bool = False, what: str = "") -> None:
    """One-line ConfigError unless ``low`` <= ``value`` <= ``high`` (strictly at an open end; NaN fails);
    ``what``, when given, says what the value is."""
    above = low < value if open_low else low <= value
    below = value < high if open_high else value <= high
    if not (above and below):
        interval = f"{'(' if open_low else '['}{low}, {high}{')' if open_high else ']'}"
        raise ConfigError(f"{key}={value!r} must be in {interval}" + (f": {what}" if what else ""))


def base_resolution(resolution: int) -> int:
    """The side of the generator's first feature map: halve while even and the half is >= 4.

    16, 32, 64, 128 -> 4; 28 -> 7; 48 -> 6. The generator then doubles it
    ``log2(resolution / base)`` times.
    """
    base = resolution
    while base % 2 == 0 and base // 2 >= 4:
        base //= 2
    return base


@dataclass(frozen=True)
class ModelConfig:
    """Architecture of the generator/discriminator pair; stored inside every snapshot."""

    arch: str = "dcgan"  # dcgan | seed (the original 64x64 plan) | mlp (the plain GAN baseline) | spatial (textures)
    # image side in pixels: base * 2^k with base 4..7 (16, 28, 32, 64, 128, ...); spatial: the training crop's
    # side, a multiple of 2^levels (the generator itself draws any size)
    resolution: int = 16
    channels: int = 1  # 1 (grayscale) or 3 (RGB)
    latent_dim: int = 100
    g_width: int = 64  # generator channels at the last hidden layer; doubles per level towards the base
    d_width: int = 64  # discriminator channels at the first layer; doubles per level
    max_width: int = 512  # cap on channels at any level
    kernel_size: int = 4  # kernel of every up/down-sampling convolution
    # Depth: extra stride-1 3x3 conv (+ norm + activation) layers at each hidden resolution of G and after
    # each strided conv of D (dcgan and seed). 0 = the plain DCGAN pair, unchanged. 3x3 whatever kernel_size
    # is: an odd kernel keeps the side without a half-pixel shift, and kernel_size stays the up/down kernel.
    g_depth: int = 0
    d_depth: int = 0
    upsample: str = "transposed"  # transposed | resize | pixelshuffle
    resize_mode: str = "nearest"  # nearest | bilinear, for upsample=resize
    g_norm: str = "batch"  # batch | none
    d_norm: str = "batch"  # batch | spectral | none
    mlp_hidden: int = 256  # hidden units of the mlp generator
    mlp_activation: str = "sigmoid"  # sigmoid | tanh | relu: the hidden nonlinearity of the mlp pair
    mlp_d_hidden: int = 0  # 0: D(x) = s(W3 x + b4) exactly as written; > 0 adds a hidden layer
    # Mode-collapse remedies in the discriminator (both off by default: D is then unchanged).
    d_pack: int = 1  # PacGAN (Lin et al. 2018): D judges packs of m samples, stacked along channels
    d_mbstd: int = 0  # minibatch-stddev group size (Karras et al. 2018): 0 = off, else >= 2; dcgan/seed
    # arch=spatial (fully convolutional, latent field in): stride-2 blocks in G (and in the patch D),
    # and the latent field's channels; tileable wraps every block of G around (seamless output)
    levels: int = 4
    local_channels: int = 32  # i.i.d. per position
    global_channels: int = 8  # one vector per image
    periodic_channels: int = 0  # PSGAN's learned sinusoids; not with tileable
    tileable: bool = False
    num_classes: int = 0  # 0: unconditional; K > 0 (dcgan, spatial): conditional batch norm in G, projection D

    def __post_init__(self) -> None:
        check_choice("model.arch", self.arch, ARCHITECTURES)
        self._check_conditional()
        check_choice("model.upsample", self.upsample, UPSAMPLERS)
        check_choice("model.resize_mode", self.resize_mode, RESIZE_MODES)
        check_choice("model.g_norm", self.g_norm, G_NORMS)
        check_choice("model.d_norm", self.d_norm, D_NORMS)
        check_choice("model.mlp_activation", self.mlp_activation, MLP_ACTIVATIONS)
        if self.channels not in (1, 3):
            raise ConfigError(f"model.channels={self.channels} must be 1 (grayscale) or 3 (RGB)")
        for key in ("latent_dim", "g_width", "d_width", "max_width", "kernel_size", "mlp_hidden"):
            check_positive(f"model.{key}", getattr(self, key))
        check_positive("model.mlp_d_hidden", self.mlp_d_hidden, allow_zero=True)
        for key in ("g_depth", "d_depth"):
            check_positive(f"model.{key}", getattr(self, key), allow_zero=True)
            if getattr(self, key) and self.arch not in ("dcgan", "seed"):
                raise ConfigError(f"model.{key}={getattr(self, key)}: extra layers per resolution exist for "
                                  f"model.arch=dcgan and seed only, not {self.arch}; set model.{key}=0")
        check_positive("model.d_pack", self.d_pack)
        check_positive("model.d_mbstd", self.d_mbstd, allow_zero=True)
        if self.d_mbstd == 1:
            raise ConfigError("model.d_mbstd=1: the stddev over a group of one sample is 0; use 0 (off) or >= 2")
        if self.d_mbstd and self.arch == "mlp":
            raise ConfigError(
                "model.d_mbstd needs a convolutional discriminator (it appends a feature map): "
                "use model.arch=dcgan or seed, or set model.d_mbstd=0"
            )
        if self.kernel_size < 2:
            raise ConfigError(f"model.kernel_size={self.kernel_size} must be >= 2 (stride-2 up/downsampling)")
        if self.arch == "seed" and self.resolution != 64:
            raise ConfigError(f"model.resolution={self.resolution}: the seed preset is 64x64; set it to 64")
        if self.arch == "spatial":
            self._check_spatial()
            return
        if self.tileable:
            raise ConfigError("model.tileable needs a fully convolutional generator: set model.arch=spatial")
        if self.resolution < 8 or base_resolution(self.resolution) == self.resolution:
            raise ConfigError(
                f"model.resolution={self.resolution} is not base * 2^k with base 4..7 and k >= 1 "
                "(try 16, 28, 32, 64 or 128)"
            )
        if not 4 <= base_resolution(self.resolution) <= 7:
            raise ConfigError(
                f"model.resolution={self.resolution} reduces to a {base_resolution(self.resolution)}-pixel "
                "base; use base * 2^k with base 4..7 (16, 28, 32, 64, 128, ...)"
            )

    def _check_conditional(self) -> None:
        check_positive("model.num_classes", self.num_classes, allow_zero=True)
        if self.num_classes and self.arch not in CONDITIONAL_ARCHITECTURES:
            raise ConfigError(f"model.num_classes={self.num_classes}: class-conditional models exist for model.arch="
                              f"{' and '.join(CONDITIONAL_ARCHITECTURES)} only, not {self.arch}; set "
                              "model.num_classes=0 or model.arch=dcgan")
        if self.num_classes and (self.g_norm != "batch" or self.d_pack != 1):
            raise ConfigError("model.num_classes > 0 needs model.g_norm=batch (classes act through G's batch norms) "
                              "and model.d_pack=1 (a pack would mix classes)")

    def _check_spatial(self) -> None:
        check_positive("model.levels", self.levels)
        for key in ("local_channels", "global_channels", "periodic_channels"):
            check_positive(f"model.{key}", getattr(self, key), allow_zero=True)
        if self.local_channels + self.global_channels == 0:
            raise ConfigError("model.local_channels and model.global_channels are both 0: the field would hold "
                              "no noise; give local_channels > 0")
        if self.periodic_channels and not self.global_channels:
            raise ConfigError("model.periodic_channels need global_channels > 0 (their wave vectors come from them)")
        if self.periodic_channels and self.tileable:
            raise ConfigError("model.periodic_channels with model.tileable: learned wave vectors do not repeat "
                              "over an arbitrary tile; set model.periodic_channels=0 or model.tileable=false")
        stride = 2**self.levels
        if self.resolution % stride or self.resolution < stride:
            raise ConfigError(f"model.resolution={self.resolution} (the training crop) must be a multiple of "
                              f"2^levels = {stride}: try {stride * max(1, self.resolution // stride)}")
        if self.d_pack != 1 or self.d_mbstd:
            raise ConfigError("model.d_pack and model.d_mbstd apply to whole-image discriminators; the spatial "
                              "arch's patch discriminator takes neither: set them to 1 and 0")

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(channels, height, width) of one generated image."""
        return (self.channels, self.resolution, self.resolution)
