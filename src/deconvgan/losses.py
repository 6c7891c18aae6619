"""Adversarial losses on discriminator **logits**, written with softplus so they never overflow.

With ``D(x) = sigmoid(l(x))``: ``-log D(x) = softplus(-l)`` and ``-log(1 - D(x)) = softplus(l)``,
exact for any logit, where ``log(sigmoid(l))`` underflows to ``-inf`` once ``l < -104`` (float32).

Each loss is a pair of callables returning batch means: ``d_loss(real_logits, fake_logits)`` is
minimised by the discriminator, ``g_loss(fake_logits)`` by the generator.

=================  ==========================================  ===================================
kind               discriminator minimises                     generator minimises
=================  ==========================================  ===================================
minimax            -E[log D(x)] - E[log(1 - D(G(z)))]          E[log(1 - D(G(z)))]  (saturating)
nonsaturating      same as minimax                             -E[log D(G(z))]
hinge              E[relu(1 - l(x))] + E[relu(1 + l(G(z)))]    -E[l(G(z))]
wasserstein        E[l(G(z))] - E[l(x)]  (+ gradient penalty)  -E[l(G(z))]
least-squares      E[(l(x) - 1)^2]/2 + E[l(G(z))^2]/2          E[(l(G(z)) - 1)^2]/2
=================  ==========================================  ===================================

``minimax`` is the value function of Goodfellow et al. (2014) exactly as the design writes it,
min_G max_D E[log D(x)] + E[log(1 - D(G(z)))]; ``nonsaturating`` is the same game with the
generator's gradient that does not vanish when D wins early, and is the default.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def value_function(real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    """E[log D(x)] + E[log(1 - D(G(z)))]: the minimax game's value (D ascends it, G descends it)."""
    return -F.softplus(-real_logits).mean() - F.softplus(fake_logits).mean()


def _d_logistic(real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    return -value_function(real_logits, fake_logits)


def _g_minimax(fake_logits: Tensor) -> Tensor:
    return -F.softplus(fake_logits).mean()  # = E[log(1 - D(G(z)))]


def _g_nonsaturating(fake_logits: Tensor) -> Tensor:
    return F.softplus(-fake_logits).mean()  # = -E[log D(G(z))]


def _d_hinge(real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    return F.relu(1 - real_logits).mean() + F.relu(1 + fake_logits).mean()


def _g_critic(fake_logits: Tensor) -> Tensor:
    return -fake_logits.mean()


def _d_wasserstein(real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    return fake_logits.mean() - real_logits.mean()


def _d_least_squares(real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    return 0.5 * ((real_logits - 1).square().mean() + fake_logits.square().mean())


def _g_least_squares(fake_logits: Tensor) -> Tensor:
    return 0.5 * (fake_logits - 1).square().mean()


@dataclass(frozen=True)
class GanLoss:
    """A discriminator loss and a generator loss for one ``loss.kind``."""

    kind: str
    d_loss: Callable[[Tensor, Tensor], Tensor]
    g_loss: Callable[[Tensor], Tensor]


LOSSES: dict[str, GanLoss] = {
    "minimax": GanLoss("minimax", _d_logistic, _g_minimax),
    "nonsaturating": GanLoss("nonsaturating", _d_logistic, _g_nonsaturating),
    "hinge": GanLoss("hinge", _d_hinge, _g_critic),
    "wasserstein": GanLoss("wasserstein", _d_wasserstein, _g_critic),
    "least-squares": GanLoss("least-squares", _d_least_squares, _g_least_squares),
}


def get_loss(kind: str) -> GanLoss:
    """The loss pair registered under ``kind`` (one of :data:`deconvgan.config.LOSSES`)."""
    try:
        return LOSSES[kind]
    except KeyError:
        raise ValueError(f"unknown loss {kind!r}; known: {', '.join(LOSSES)}") from None


def r1_penalty(real_logits: Tensor, real_images: Tensor) -> Tensor:
    """E|grad_x l(x)|^2 on real images (Mescheder et al. 2018); multiply by gamma/2.

    ``real_images`` must have ``requires_grad=True`` and ``real_logits`` must come from it.
    """
    (grad,) = torch.autograd.grad(real_logits.sum(), real_images, create_graph=True)
    return grad.square().flatten(1).sum(1).mean()


def gradient_penalty(
    discriminator: nn.Module, real: Tensor, fake: Tensor, *, eps: Tensor | None = None,
    generator: torch.Generator | None = None,
) -> Tensor:
    """WGAN-GP (Gulrajani et al. 2017): E[(|grad l(x_hat)| - 1)^2] at random interpolates.

    ``x_hat = eps * real + (1 - eps) * fake`` with one ``eps ~ U[0, 1]`` per sample: given as
    ``eps`` [N], or drawn from ``generator``, so that training stays reproducible. Multiply by
    ``loss.gp_weight``.
    """
    if eps is None:
        eps = torch.rand(real.shape[0], device=real.device, dtype=real.dtype, generator=generator)
    eps = eps.to(real.dtype).view(-1, 1, 1, 1)
    mixed = (eps * real + (1 - eps) * fake.detach()).requires_grad_(True)
    (grad,) = torch.autograd.grad(discriminator(mixed).sum(), mixed, create_graph=True)
    return (grad.flatten(1).norm(dim=1) - 1).square().mean()
