"""Class-conditional models: conditional batch norm in G, a projection discriminator (Miyato & Koyama 2018).

``model.num_classes = K > 0`` builds these instead of the plain pair (same layers, same names), for
``model.arch=dcgan``:

* :class:`ConditionalDCGANGenerator` -- ``forward(z, labels)``: every ``norm{i}`` is a
  :class:`~deconvgan.models.cbn.ConditionalBatchNorm2d`, so each class has its own scale and shift
  after every hidden layer.
* :class:`ProjectionDiscriminator` -- ``forward(x, labels)``: with ``phi(x)`` the flattened
  penultimate features (what D's final Linear reads), the logit is
  ``w . phi(x) + b + embed[y] . phi(x)``: the unconditional logit plus the inner product of a learned
  class embedding with the features.

and for ``model.arch=spatial`` (textures; one class per texture, constant over its whole field):

* :class:`ConditionalSpatialGenerator` -- ``forward(field, labels)``: the spatial generator with every
  ``norm{i}`` conditional. In eval mode each is a per-channel affine map of the running statistics
  followed by the class's scale and shift: the same at every position, so a window of a class's texture
  still equals the same region of the whole image (:mod:`deconvgan.tiles`), tileable output still wraps.
* :class:`PatchProjectionDiscriminator` -- ``forward(x, labels)``: the patch discriminator's logit at
  each patch position plus ``embed[y] . phi(x)[:, :, i, j]``, the projection at that position.

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
from deconvgan.models.cbn import make_conditional, run_with_labels
from deconvgan.models.dcgan import DCGANDiscriminator, DCGANGenerator
from deconvgan.models.init import INIT_STD
from deconvgan.models.spatial import PatchDiscriminator, SpatialGenerator


def balanced_labels(n: int, num_classes: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """``[0, 1, ..., K-1, 0, 1, ...]``: int64 ``[n]``, sample ``i`` of class ``i mod K``."""
    return torch.arange(n, device=device) % num_classes


def check_labels(labels: torch.Tensor, n: int, num_classes: int) -> None:
    """ValueError unless ``labels`` is an integer ``[n]`` tensor of ids in ``0..num_classes-1``."""
    if labels.dtype not in (torch.int64, torch.int32) or labels.shape != (n,):
        raise ValueError(f"labels must be int64 [{n}], got {labels.dtype} {tuple(labels.shape)}")
    if n and (int(labels.min()) < 0 or int(labels.max()) >= num_classes):
        raise ValueError(f"labels must lie in 0..{num_classes - 1}, got {int(labels.min())}..{int(labels.max())}")


def class_embedding(num_classes: int, features: int, spectral: bool) -> nn.Embedding:
    """A projection discriminator's ``[num_classes, features]`` class embedding: N(0, 0.02) at init,
    spectrally normalised when ``spectral`` (d_norm=spectral, as the rest of D)."""
    embed = nn.Embedding(num_classes, features)
    nn.init.normal_(embed.weight, 0.0, INIT_STD)
    if spectral:
        spectral_norm(embed)
    return embed


def projection(embed: nn.Embedding, labels: torch.Tensor, phi: torch.Tensor) -> torch.Tensor:
    """``embed[y_i] . phi_i`` over the feature axis (dim 1): ``[N, F] -> [N]``, ``[N, F, h, w] -> [N, h, w]``
    (one inner product per position)."""
    e = embed(labels)  # [N, F]
    return (e.view(*e.shape, *(1,) * (phi.dim() - 2)) * phi).sum(dim=1)


class ConditionalDCGANGenerator(DCGANGenerator):
    """``forward(z: [N, latent_dim], labels: [N] | None) -> [N, C, R, R]`` in [-1, 1]; see the module doc."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__(cfg)
        self.num_classes = cfg.num_classes
        make_conditional(self.net, cfg.num_classes)

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        if labels is None:
            labels = balanced_labels(z.shape[0], self.num_classes, z.device)
        return run_with_labels(self.net, z, labels)


class ProjectionDiscriminator(DCGANDiscriminator):
    """``forward(x: [N, C, R, R], labels: [N] | None) -> [N]`` logits; see the module doc.

    ``self.embed`` is the ``[num_classes, features]`` class embedding (N(0, 0.02) at init; spectrally
    normalised with ``d_norm=spectral``, as the rest of D).
    """

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__(cfg)
        self.num_classes = cfg.num_classes
        self.embed = class_embedding(cfg.num_classes, self.net.logit.in_features, cfg.d_norm == "spectral")

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """phi(x): the flattened penultimate features ``[N, features]`` the logit is computed from."""
        return self.net[:-1](x)

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        if labels is None:
            labels = balanced_labels(x.shape[0], self.num_classes, x.device)
        phi = self.features(x)  # [N, F]
        return self.net.logit(phi).squeeze(1) + projection(self.embed, labels, phi)  # [N]


class ConditionalSpatialGenerator(SpatialGenerator):
    """``forward(field: [N, C_z, h, w], labels: [N] | None) -> [N, C, h 2^L, w 2^L]``: texture ``i`` of class
    ``labels[i]``; see the module doc."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__(cfg)
        self.num_classes = cfg.num_classes
        make_conditional(self.net, cfg.num_classes)

    def forward(self, field: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        if labels is None:
            labels = balanced_labels(field.shape[0], self.num_classes, field.device)
        return run_with_labels(self.net, self.input(field), labels)


class PatchProjectionDiscriminator(PatchDiscriminator):
    """``forward(x: [N, C, H, W], labels: [N] | None) -> [N, P]``: per-patch logits plus the class projection
    at each patch position. ``self.embed`` is the ``[num_classes, features]`` class embedding."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__(cfg)
        self.num_classes = cfg.num_classes
        self.embed = class_embedding(cfg.num_classes, self.net.logit.in_channels, cfg.d_norm == "spectral")

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """phi(x): the feature map ``[N, F, H / 2^L, W / 2^L]`` the patch logits are computed from."""
        return self.net[:-2](x)  # everything before `logit` and `flatten`

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        if labels is None:
            labels = balanced_labels(x.shape[0], self.num_classes, x.device)
        phi = self.features(x)  # [N, F, h, w]
        logits = self.net.logit(phi).squeeze(1) + projection(self.embed, labels, phi)  # [N, h, w]
        return logits.flatten(1)  # [N, P], in the order of the unconditional D's flatten
