"""The ``mlp`` preset: the plain fully-connected GAN the design starts from, kept as the baseline.

    G(z) = tanh(W1 s(W2 z + b2) + b1)        reshaped to [N, C, R, R]
    D(x) = s(W3 x + b4)                      the module returns the logit W3 x + b4

``s`` is ``mlp_activation`` (sigmoid or tanh as originally written, or relu). The discriminator's
outer sigmoid is not applied here: every loss takes logits and applies it in a numerically stable
form (``binary_cross_entropy_with_logits``), so ``sigmoid(D(x))`` is the written ``D(x)``. With
``mlp_d_hidden > 0`` the discriminator gets one hidden layer of that width with the same
activation: ``logit = W3 s(W5 x + b5) + b4``. ``resolution``, ``channels``, ``latent_dim`` and
``mlp_hidden`` apply; the convolution knobs and the batch norms (``g_norm``, ``d_norm=batch``) do not
(the baseline has no normalisation), while ``d_norm=spectral`` wraps D's linear layers.

Attribute names follow the formulas: G has ``hidden`` (W2, b2) and ``out`` (W1, b1); D has
``out`` (W3, b4) and, with a hidden layer, ``hidden`` (W5, b5) -- all inside ``self.net``.

PacGAN packing (``d_pack = m``) works here too: the m flattened samples of a pack are
concatenated, so ``x`` above is ``m * C * R * R`` long. The minibatch-stddev layer (``d_mbstd``)
appends a feature map, so it needs a convolutional discriminator (ConfigError for mlp).
"""

from __future__ import annotations

import math
from collections import OrderedDict

import torch
from torch import nn

from deconvgan.config import ModelConfig
from deconvgan.errors import ConfigError
from deconvgan.models.dcgan import apply_spectral_norm, pack_samples
from deconvgan.models.init import init_weights


def make_activation(name: str) -> nn.Module:
    """The hidden nonlinearity ``s`` of the mlp pair."""
    activations: dict[str, type[nn.Module]] = {"sigmoid": nn.Sigmoid, "tanh": nn.Tanh, "relu": nn.ReLU}
    return activations[name]()


class MLPGenerator(nn.Module):
    """``forward(z: [N, latent_dim]) -> [N, C, R, R]`` = ``tanh(W1 s(W2 z + b2) + b1)``."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.config = cfg
        self.latent_dim = cfg.latent_dim
        pixels = math.prod(cfg.image_shape)
        self.net = nn.Sequential(OrderedDict(
            hidden=nn.Linear(cfg.latent_dim, cfg.mlp_hidden),  # W2 z + b2: [N, hidden]
            act=make_activation(cfg.mlp_activation),  # s(.)
            out=nn.Linear(cfg.mlp_hidden, pixels),  # W1 . + b1: [N, C*R*R]
            tanh=nn.Tanh(),
            reshape=nn.Unflatten(1, cfg.image_shape),  # [N, C, R, R]
        ))
        init_weights(self)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


class MLPDiscriminator(nn.Module):
    """``forward(x: [N, C, R, R]) -> [N / d_pack]`` logits ``W3 x + b4`` (``x`` flattened row-major).

    With ``d_pack = m``, ``x`` is a pack: the m flattened samples ``m*i .. m*i + m-1`` end to end.
    """

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        if cfg.d_mbstd:  # ModelConfig refuses this too; guard direct construction
            raise ConfigError("model.d_mbstd needs a convolutional discriminator: use model.arch=dcgan or seed")
        self.config = cfg
        self.pack = cfg.d_pack
        pixels = math.prod(cfg.image_shape) * cfg.d_pack  # one pack, flattened
        layers: OrderedDict[str, nn.Module] = OrderedDict(flatten=nn.Flatten())  # [N / m, m*C*R*R]
        width = pixels
        if cfg.mlp_d_hidden > 0:
            layers["hidden"] = nn.Linear(pixels, cfg.mlp_d_hidden)  # [N / m, d_hidden]
            layers["act"] = make_activation(cfg.mlp_activation)
            width = cfg.mlp_d_hidden
        layers["out"] = nn.Linear(width, 1)  # [N / m, 1]
        self.net = nn.Sequential(layers)
        init_weights(self)
        if cfg.d_norm == "spectral":
            apply_spectral_norm(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Packing along channels then flattening = concatenating the flattened samples of a pack.
        return self.net(pack_samples(x, self.pack)).squeeze(1)  # [N / m, 1] -> [N / m]
