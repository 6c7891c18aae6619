"""The ``seed`` preset: the project's original 64x64 plan, made to work.

The original sketch was a generator of one dense layer followed by four 4x4, stride-2 transposed
convolutions (256, 128, 64, 3 output channels: 8, 16, 32, 64 px), and a discriminator of 64-,
128- and 256-channel 4x4, stride-2 convolutions followed by a dense layer. As sketched it could not
train: there were no activations (so each network collapsed to one linear map), no normalisation,
and the dense output was reshaped to a shape that did not match the 4x4x512 map the first
transposed convolution needs. This preset keeps the layer plan and fixes exactly those points:

* G: ``z -> dense -> [512, 4, 4]`` (BatchNorm, ReLU) ``-> 256@8 -> 128@16 -> 64@32`` (each
  BatchNorm + ReLU) ``-> channels@64 -> tanh``.
* D: ``x -> 64@32`` (LeakyReLU 0.2) ``-> 128@16 -> 256@8`` (norm per ``d_norm`` + LeakyReLU 0.2)
  ``-> flatten (256*8*8) -> dense -> logit``.

The widths are fixed by the plan (``g_width``, ``d_width`` and ``max_width`` do not apply);
``latent_dim``, ``channels``, ``g_norm``, ``d_norm``, ``kernel_size``, ``g_depth``, ``d_depth``,
``upsample`` and the discriminator's ``d_pack`` / ``d_mbstd`` apply as for ``dcgan``. With their
defaults (kernel 4, depth 0, transposed, no packing, no minibatch stddev) the layers are exactly
the plan's. The generator coincides with the 64x64 DCGAN generator; the discriminator stops one
level earlier (8x8x256 instead of 4x4x512) before its dense layer.
"""

from __future__ import annotations

from deconvgan.config import ModelConfig
from deconvgan.errors import ConfigError
from deconvgan.models.dcgan import DCGANDiscriminator, DCGANGenerator

SEED_RESOLUTION = 64
SEED_G_WIDTHS = (512, 256, 128, 64)  # hidden maps at 4, 8, 16, 32 px
SEED_D_WIDTHS = (64, 128, 256)  # conv outputs at 32, 16, 8 px


def _check(cfg: ModelConfig) -> None:
    if cfg.resolution != SEED_RESOLUTION:  # ModelConfig enforces this too; guard direct calls
        raise ConfigError(f"model.resolution={cfg.resolution}: the seed preset is 64x64; set it to 64")


def build_seed_generator(cfg: ModelConfig) -> DCGANGenerator:
    """The seed generator: dense -> 4x4x512 -> four stride-2 upsamplings -> ``[N, C, 64, 64]``."""
    _check(cfg)
    return DCGANGenerator(cfg, widths=SEED_G_WIDTHS)


def build_seed_discriminator(cfg: ModelConfig) -> DCGANDiscriminator:
    """The seed discriminator: three stride-2 convs (64, 128, 256) -> 8x8x256 -> dense -> ``[N]`` logits."""
    _check(cfg)
    return DCGANDiscriminator(cfg, widths=SEED_D_WIDTHS)
