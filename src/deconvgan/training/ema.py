"""The generator's exponential moving average, and batch-norm statistics that match it.

Weights average with a half-life in images (``ema_halflife_kimg``), as in Karras et al.: after
each step of ``batch`` images, ``ema = beta * ema + (1 - beta) * G`` with
``beta = 0.5 ** (batch / halflife_images)``. Early in training the half-life is capped at
``rampup`` times the images seen, so the average does not drag in the random initial weights.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from deconvgan.config import ModelConfig
from deconvgan.latents import draw_latents


def ema_beta(batch: int, images_seen: int, halflife_kimg: float, rampup: float | None) -> float:
    """The averaging coefficient for one step of ``batch`` images."""
    halflife_images = halflife_kimg * 1000
    if rampup is not None:
        halflife_images = min(halflife_images, images_seen * rampup)
    return 0.5 ** (batch / max(halflife_images, 1e-8))


@torch.no_grad()
def update_ema(ema: nn.Module, model: nn.Module, beta: float) -> None:
    """Move ``ema``'s parameters towards ``model``'s; copy buffers (batch-norm statistics) as they are."""
    ema_params = list(ema.parameters())
    torch._foreach_lerp_(ema_params, list(model.parameters()), 1.0 - beta)
    for ema_buffer, buffer in zip(ema.buffers(), model.buffers(), strict=True):
        ema_buffer.copy_(buffer)


@torch.no_grad()
def recalibrate_batchnorm(
    generator: nn.Module, latent: int | ModelConfig, *, num_samples: int, batch_size: int, gen: torch.Generator,
) -> nn.Module:
    """A copy of ``generator`` whose batch-norm running statistics are those of its own outputs.

    The averaged weights never produced the running statistics they carry (those come from the
    raw generator), so in eval mode the average can drift from what it draws in train mode.
    Re-estimating the statistics over ``num_samples`` latents (exact averages, momentum=None)
    makes eval-mode samples independent of the batch and faithful to the averaged weights.
    ``latent`` is the latent size of a vector-input generator, or the model config (whose
    :func:`~deconvgan.latents.draw_latents` then gives vectors or training-size latent fields).
    Returns the copy in eval mode; the input is untouched.
    """
    model = copy.deepcopy(generator)
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not norms:
        return model.eval()
    device = next(model.parameters()).device
    momenta = [norm.momentum for norm in norms]
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None  # cumulative average over all batches
    model.train()
    for start in range(0, num_samples, batch_size):
        n = min(batch_size, num_samples - start)
        if isinstance(latent, int):
            model(torch.randn(n, latent, device=device, generator=gen))
        else:
            model(draw_latents(latent, n, gen, device))
    for norm, momentum in zip(norms, momenta, strict=True):
        norm.momentum = momentum
    return model.eval()
