"""Generators and discriminators: DCGAN (three upsampling modes), the ``seed`` preset, the mlp baseline.

Public API::

    build_generator(cfg)      # forward(z: [N, latent_dim]) -> [N, C, R, R] in [-1, 1]
    build_discriminator(cfg)  # forward(x: [N, C, R, R]) -> [N] logits
    model_summary(model, example_input) -> list[LayerRow]; format_summary(rows, total_params)
    fuse_for_inference(generator)  # eval-mode copy with BatchNorm folded into the layer before it
"""

from deconvgan.models.dcgan import (
    DCGANDiscriminator,
    DCGANGenerator,
    discriminator_widths,
    generator_widths,
    num_levels,
)
from deconvgan.models.fuse import fuse_for_inference
from deconvgan.models.init import icnr_, init_weights
from deconvgan.models.mlp import MLPDiscriminator, MLPGenerator
from deconvgan.models.registry import MODEL_REGISTRY, ArchBuilders, build_discriminator, build_generator
from deconvgan.models.seed import build_seed_discriminator, build_seed_generator
from deconvgan.models.summary import LayerRow, count_params, example_inputs, format_summary, model_summary
from deconvgan.models.upsample import (
    PixelShuffleUpsample,
    ResizeConvUpsample,
    TransposedUpsample,
    make_upsample,
    transposed_padding,
)

__all__ = [
    "MODEL_REGISTRY",
    "ArchBuilders",
    "DCGANDiscriminator",
    "DCGANGenerator",
    "LayerRow",
    "MLPDiscriminator",
    "MLPGenerator",
    "PixelShuffleUpsample",
    "ResizeConvUpsample",
    "TransposedUpsample",
    "build_discriminator",
    "build_generator",
    "build_seed_discriminator",
    "build_seed_generator",
    "count_params",
    "discriminator_widths",
    "example_inputs",
    "format_summary",
    "fuse_for_inference",
    "generator_widths",
    "icnr_",
    "init_weights",
    "make_upsample",
    "model_summary",
    "num_levels",
    "transposed_padding",
]
