"""Class-conditional DCGAN: conditional batch norm in G, a projection discriminator (Miyato & Koyama 2018).

``model.num_classes = K > 0`` builds these instead of the plain DCGAN pair (same layers, same names):

* :class:`ConditionalDCGANGenerator` -- ``forward(z, labels)``: every ``norm{i}`` is a
  :class:`~deconvgan.models.cbn.ConditionalBatchNorm2d`, so each class has its own scale and shift
  after every hidden layer.
* :class:`ProjectionDiscriminator` -- ``forward(x, labels)``: with ``phi(x)`` the flattened
  penultimate features (what D's final Linear reads), the logit is
  ``w . phi(x) + b + embed[y] . phi(x)``: the unconditional logit plus the inner product of a learned
  class embedding with the features.

``labels`` are int64 ``[N]`` class ids in ``0..K-1``. Left out, they default to
:func:`balanced_labels` (sample ``i`` draws class ``i mod K``): the evaluation code, sample grids and
batch-norm recalibration, which know nothing of classes, then see every class equally often.
Training always passes labels explicitly. Packing (``d_pack > 1``) is refused by the config: a pack
would mix classes.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from deconvgan.config import ModelConfig
from deconvgan.models.cbn import ConditionalBatchNorm2d
from deconvgan.models.dcgan import DCGANDiscriminator, DCGANGenerator
from deconvgan.models.init import INIT_STD


def balanced_labels(n: int, num_classes: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """``[0, 1, ..., K-1, 0, 1, ...]``: int64 ``[n]``, sample ``i`` of class ``i mod K``."""
    return torch.arange(n, device=device) % num_classes


def check_labels(labels: torch.Tensor, n: int, num_classes: int) -> None:
    """ValueError unless ``labels`` is an integer ``[n]`` tensor of ids in ``0..num_classes-1``."""
    if labels.dtype not in (torch.int64, torch.int32) or labels.shape != (n,):
        raise ValueError(f"labels must be int64 [{n}], got {labels.dtype} {tuple(labels.shape)}")
    if n and (int(labels.min()) < 0 or int(labels.max()) >= num_classes):
        raise ValueError(f"labels must lie in 0..{num_classes - 1}, got {int(labels.min())}..{int(labels.max())}")


class ConditionalDCGANGenerator(DCGANGenerator):
    """``forward(z: [N, latent_dim], labels: [N] | None) -> [N, C, R, R]`` in [-1, 1]; see the module doc."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__(cfg)
        self.num_classes = cfg.num_classes
        for name, module in list(self.net.named_children()):
            if isinstance(module, nn.BatchNorm2d):
                setattr(self.net, name, ConditionalBatchNorm2d(module.num_features, cfg.num_classes))

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        if labels is None:
            labels = balanced_labels(z.shape[0], self.num_classes, z.device)
        x = z
        for module in self.net:
            x = module(x, labels) if isinstance(module, ConditionalBatchNorm2d) else module(x)
        return x


class ProjectionDiscriminator(DCGANDiscriminator):
    """``forward(x: [N, C, R, R], labels: [N] | None) -> [N]`` logits; see the module doc.

    ``self.embed`` is the ``[num_classes, features]`` class embedding (N(0, 0.02) at init; spectrally
    normalised with ``d_norm=spectral``, as the rest of D).
    """

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__(cfg)
        self.num_classes = cfg.num_classes
        features = self.net.logit.in_features
        self.embed = nn.Embedding(cfg.num_classes, features)
        nn.init.normal_(self.embed.weight, 0.0, INIT_STD)
        if cfg.d_norm == "spectral":
            spectral_norm(self.embed)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """phi(x): the flattened penultimate features ``[N, features]`` the logit is computed from."""
        return self.net[:-1](x)

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        if labels is None:
            labels = balanced_labels(x.shape[0], self.num_classes, x.device)
        phi = self.features(x)  # [N, F]
        projection = (self.embed(labels) * phi).sum(dim=1)  # [N]: embed[y_i] . phi(x_i)
        return self.net.logit(phi).squeeze(1) + projection
