"""Weight initialisation: DCGAN's N(0, 0.02), then ICNR for sub-pixel (pixel-shuffle) convolutions.

Radford, Metz & Chintala (2016): conv/linear weights ~ N(0, 0.02), BatchNorm scale ~ N(1, 0.02),
all biases 0. Every draw uses torch's global RNG in module order, so ``torch.manual_seed(s)``
before building a model gives bit-identical weights (the training loop relies on this).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils import parametrize

from deconvgan.models.upsample import PixelShuffleUpsample

INIT_STD = 0.02  # DCGAN's standard deviation for every weight


def _raw(module: nn.Module, name: str) -> torch.Tensor | None:
    """The stored tensor behind ``module.<name>``: the original weight under a parametrization
    (e.g. spectral norm), where ``module.weight`` is a computed, non-leaf tensor."""
    if parametrize.is_parametrized(module, name):
        return module.parametrizations[name].original
    return getattr(module, name, None)


def dcgan_init_(module: nn.Module) -> None:
    """Initialise one module in place (non-recursive); other module types are left alone."""
    weight, bias = _raw(module, "weight"), _raw(module, "bias")
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
        nn.init.normal_(weight, 0.0, INIT_STD)
    elif isinstance(module, nn.modules.batchnorm._BatchNorm) and module.affine:
        nn.init.normal_(weight, 1.0, INIT_STD)  # scale near 1: the block starts near plain normalisation
    else:
        return
    if bias is not None:
        nn.init.zeros_(bias)


@torch.no_grad()
def icnr_(conv: nn.Conv2d, scale: int, std: float = INIT_STD) -> None:
    """ICNR (Aitken et al. 2017): make a conv feeding ``PixelShuffle(scale)`` start as nearest upsampling.

    The conv has ``C_out * scale^2`` output channels; PixelShuffle sends channel
    ``c * scale^2 + q`` to sub-pixel position ``q`` of output channel ``c``. Drawing one
    ``C_out``-kernel (with the model's init) and repeating each kernel ``scale^2`` times gives all
    sub-pixel positions the same filter, so every ``scale x scale`` output block is constant at init.
    """
    weight = _raw(conv, "weight")
    out_channels, in_channels, kh, kw = weight.shape
    if out_channels % (scale * scale):
        raise ValueError(f"ICNR: {out_channels} conv channels are not a multiple of scale^2={scale * scale}")
    sub = weight.new_empty(out_channels // (scale * scale), in_channels, kh, kw)
    nn.init.normal_(sub, 0.0, std)
    weight.copy_(sub.repeat_interleave(scale * scale, dim=0))  # kernel c -> channels 4c..4c+3 (scale 2)
    bias = _raw(conv, "bias")
    if bias is not None:
        nn.init.zeros_(bias)  # equal (zero) biases across sub-pixel positions too


def init_weights(model: nn.Module) -> nn.Module:
    """DCGAN init of every conv/linear/BatchNorm in ``model``, then ICNR for pixel-shuffle blocks.

    Returns ``model`` (initialised in place). The ICNR pass overrides the DCGAN draws of those convs.
    """
    for module in model.modules():  # a fixed, deterministic order: the draws depend only on the seed
        dcgan_init_(module)
    for module in model.modules():
        if isinstance(module, PixelShuffleUpsample):
            icnr_(module.conv, module.scale)
    return model
