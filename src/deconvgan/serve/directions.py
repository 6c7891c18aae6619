"""Interpretable latent directions, GANSpace-style (Härkönen, Hertzmann, Lehtinen & Paris 2020).

GANSpace finds the principal components of a generator's early feature map over many random latents,
then maps them back to the latent space by regression. Here:

1. draw ``samples`` latents ``z`` [S, D] (seeded: the same directions on every start);
2. run the generator up to its first feature map -- the output of its first block (projection, reshape,
   batch norm and activation: ``[S, C0, base, base]``, flattened to ``F`` features) -- ``y`` [S, F];
3. PCA of the centred ``y``: principal axes ``V`` [F, K] and coordinates ``x = (y - mean) V`` [S, K];
4. regress ``z`` on ``x`` by least squares, ``z ~ x U^T`` with ``U`` [D, K]: column k of ``U`` is the latent
   step that moves the feature map along principal axis k (GANSpace's regression for BigGAN, whose
   first layer is not a linear map of z either);
5. return the columns of ``U`` as unit vectors, the spread of ``z`` along each (the standard deviation of
   ``z . u_k``: a slider of +-2 scales covers the typical range) and each component's share of the
   feature variance.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from deconvgan.config import ModelConfig
from deconvgan.errors import ConfigError

_ACTIVATIONS = (nn.ReLU, nn.LeakyReLU, nn.Sigmoid, nn.Tanh, nn.ELU, nn.GELU, nn.SiLU)


@dataclass(frozen=True)
class Directions:
    """``vectors`` float32 [K, D] unit rows; ``scales`` [K] std of z along each; ``explained_variance`` [K]
    ratios of the first feature map's variance (descending, summing to <= 1)."""

    vectors: torch.Tensor
    scales: torch.Tensor
    explained_variance: torch.Tensor


def first_feature_map(generator: nn.Module, z: torch.Tensor) -> torch.Tensor:
    """The output of the generator's first block for latents ``z`` [N, D], flattened: [N, F].

    The first block is everything in ``generator.net`` up to and including its first activation. A
    class-conditional generator's batch norms get the default labels (sample i of class i mod K).
    """
    net = getattr(generator, "net", None)
    if not isinstance(net, nn.Sequential):
        raise ConfigError(f"{type(generator).__name__} has no layer sequence `net`: latent directions need one")
    labels = None
    if getattr(generator, "num_classes", 0):
        from deconvgan.models.conditional import balanced_labels

        labels = balanced_labels(z.shape[0], generator.num_classes, z.device)
    x = z
    with torch.inference_mode():
        for module in net:
            takes_labels = labels is not None and type(module).__name__ == "ConditionalBatchNorm2d"
            x = module(x, labels) if takes_labels else module(x)
            if isinstance(module, _ACTIVATIONS):
                return x.flatten(1)
    raise ConfigError(f"{type(generator).__name__} has no activation in `net`: no first block to take features from")


def compute_directions(generator: nn.Module, model_cfg: ModelConfig, *, count: int = 8, samples: int = 2048,
                       seed: int = 0) -> Directions:
    """The ``count`` GANSpace directions of an image generator (see the module doc), computed on the CPU in
    float64 from ``samples`` seeded latents. Texture models (latent fields) have none: ConfigError."""
    if model_cfg.arch == "spatial":
        raise ConfigError("latent directions are for whole-image models; a texture model takes latent fields")
    if count < 1 or samples < 2:
        raise ConfigError(f"directions: count={count} must be >= 1 and samples={samples} >= 2")
    gen = torch.Generator().manual_seed(seed)
    z = torch.randn(samples, model_cfg.latent_dim, generator=gen)  # [S, D]
    modes = {module: module.training for module in generator.modules()}
    try:
        generator.eval()
        device = next(generator.parameters()).device
        features = first_feature_map(generator, z.to(device)).double().cpu()  # [S, F]
    finally:
        for module, training in modes.items():
            module.training = training
    centred = features - features.mean(0)
    count = min(count, min(centred.shape), model_cfg.latent_dim)
    # The top K singular vectors of the centred features [S, F] by randomised SVD (Halko et al. 2011):
    # O(S F K) instead of a full SVD's O(S F min(S, F)), which takes half a minute for a 64-pixel DCGAN's
    # 8192 features. Its random projection is seeded too (torch's global RNG is left as it was).
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        _, singular, v = torch.svd_lowrank(centred, q=min(count + 10, *centred.shape), niter=6)
    singular, axes = singular[:count], v[:, :count]  # [K], [F, K] principal axes
    total = centred.square().sum()  # the whole variance (times S - 1), for the ratios
    coords = centred @ axes  # [S, K] principal coordinates
    # z ~ coords @ B with B [K, D]: row k of B is the latent step per unit of PC k
    solution = torch.linalg.lstsq(coords, z.double()).solution  # [K, D]
    vectors = solution / solution.norm(dim=1, keepdim=True).clamp_min(1e-12)
    scales = (z.double() @ vectors.T).std(0)  # [K]
    ratios = singular.square() / total if total > 0 else torch.zeros(count, dtype=torch.float64)
    return Directions(vectors.float(), scales.float(), ratios.float())
