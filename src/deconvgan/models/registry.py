"""Architecture name -> builders: an explicit dict (no string import paths), and the public builders."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

from deconvgan.config import ModelConfig
from deconvgan.errors import ConfigError
from deconvgan.models.conditional import (
    ConditionalDCGANGenerator,
    ConditionalSpatialGenerator,
    PatchProjectionDiscriminator,
    ProjectionDiscriminator,
)
from deconvgan.models.dcgan import DCGANDiscriminator, DCGANGenerator
from deconvgan.models.mlp import MLPDiscriminator, MLPGenerator
from deconvgan.models.seed import build_seed_discriminator, build_seed_generator
from deconvgan.models.spatial import PatchDiscriminator, SpatialGenerator


@dataclass(frozen=True)
class ArchBuilders:
    """The two builders of one architecture and a one-line description (for ``deconvgan info``)."""

    generator: Callable[[ModelConfig], nn.Module]
    discriminator: Callable[[ModelConfig], nn.Module]
    description: str


MODEL_REGISTRY: dict[str, ArchBuilders] = {
    "dcgan": ArchBuilders(
        DCGANGenerator, DCGANDiscriminator,
        "DCGAN: dense -> base x base map, stride-2 upsampling blocks; strided-conv discriminator",
    ),
    "seed": ArchBuilders(
        build_seed_generator, build_seed_discriminator,
        "the original 64x64 plan: dense -> 4x4x512 -> 4 transposed convs; 3-conv discriminator",
    ),
    "mlp": ArchBuilders(
        MLPGenerator, MLPDiscriminator,
        "the plain GAN baseline: G(z) = tanh(W1 s(W2 z + b2) + b1), D(x) = s(W3 x + b4)",
    ),
    "spatial": ArchBuilders(
        SpatialGenerator, PatchDiscriminator,
        "textures: latent field -> stride-2 upsampling blocks (any size, optionally tileable); patch discriminator",
    ),
}

# model.num_classes > 0: the class-conditional pair of the architectures that have one (the config refuses others)
CONDITIONAL_REGISTRY: dict[str, ArchBuilders] = {
    "dcgan": ArchBuilders(ConditionalDCGANGenerator, ProjectionDiscriminator,
                          "DCGAN with conditional batch norm in G and a projection discriminator"),
    "spatial": ArchBuilders(ConditionalSpatialGenerator, PatchProjectionDiscriminator,
                            "textures with conditional batch norm in G and a per-patch projection discriminator"),
}


def _builders(cfg: ModelConfig) -> ArchBuilders:
    try:
        return (CONDITIONAL_REGISTRY if cfg.num_classes else MODEL_REGISTRY)[cfg.arch]
    except KeyError:
        raise ConfigError(f"model.arch={cfg.arch!r} is not one of {', '.join(MODEL_REGISTRY)}") from None


def build_generator(cfg: ModelConfig) -> nn.Module:
    """A freshly initialised generator: ``forward(z: [N, latent_dim]) -> [N, C, R, R]`` in [-1, 1].

    Spatial (texture) generators take a latent field ``[N, C_z, h, w]`` instead of ``z``. With
    ``cfg.num_classes > 0``: ``forward(z, labels: [N] int64)`` (conditional batch norm, see
    :mod:`deconvgan.models.conditional`).

    The module has ``.latent_dim`` and ``.config`` (``cfg``). Weights are drawn from torch's global
    RNG, so ``torch.manual_seed(s)`` first makes the result reproducible.
    """
    return _builders(cfg).generator(cfg)


def build_discriminator(cfg: ModelConfig) -> nn.Module:
    """A freshly initialised discriminator: ``forward(x: [N, C, R, R]) -> [N]`` logits (no sigmoid).

    With ``cfg.num_classes > 0``: ``forward(x, labels: [N] int64)``, a projection discriminator.
    Spatial: one logit per patch, ``[N, P]``.

    The module has ``.config`` (``cfg``); weights come from torch's global RNG, like the generator's.
    """
    return _builders(cfg).discriminator(cfg)
