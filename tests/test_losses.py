"""Losses against hand-computed values, numerical stability, and the penalties on known functions."""

import math

import pytest
import torch

from deconvgan.losses import LOSSES, get_loss, gradient_penalty, r1_penalty, value_function

REAL = torch.tensor([0.0, 2.0])
FAKE = torch.tensor([-1.0, 3.0])
# By hand: -log sigmoid(0) = ln 2 = 0.693147, -log sigmoid(2) = ln(1 + e^-2) = 0.126928,
# -log(1 - sigmoid(-1)) = ln(1 + e^-1) = 0.313262, -log(1 - sigmoid(3)) = ln(1 + e^3) = 3.048587.
D_LOGISTIC = (0.693147 + 0.126928) / 2 + (0.313262 + 3.048587) / 2  # 2.090962
HAND = {
    # kind: (discriminator loss, generator loss)
    "minimax": (D_LOGISTIC, -(0.313262 + 3.048587) / 2),  # G: E[log(1 - D(G(z)))] = -1.680925
    "nonsaturating": (D_LOGISTIC, (1.313262 + 0.048587) / 2),  # G: -E[log D(G(z))] = 0.680925
    "hinge": ((1 + 0) / 2 + (0 + 4) / 2, -1.0),  # relu(1-r), relu(1+f); G: -mean f
    "wasserstein": (1.0 - 1.0, -1.0),  # mean f - mean r; G: -mean f
    "least-squares": (0.5 * ((1 + 1) / 2 + (1 + 9) / 2), 0.5 * (4 + 4) / 2),
}


@pytest.mark.parametrize("kind", sorted(HAND))
def test_losses_match_hand_computed_values(kind):
    loss = get_loss(kind)
    d_expected, g_expected = HAND[kind]
    assert loss.d_loss(REAL, FAKE).item() == pytest.approx(d_expected, abs=1e-5)
    assert loss.g_loss(FAKE).item() == pytest.approx(g_expected, abs=1e-5)


def test_every_configured_loss_has_hand_values():
    assert set(HAND) == set(LOSSES)


def test_value_function_is_the_minimax_objective():
    # V(D, G) = E[log D(x)] + E[log(1 - D(G(z)))]; D minimises -V.
    naive = torch.log(torch.sigmoid(REAL)).mean() + torch.log(1 - torch.sigmoid(FAKE)).mean()
    assert value_function(REAL, FAKE).item() == pytest.approx(naive.item(), abs=1e-6)
    assert get_loss("minimax").d_loss(REAL, FAKE).item() == pytest.approx(-naive.item(), abs=1e-6)


@pytest.mark.parametrize("kind", ["minimax", "nonsaturating"])
def test_logistic_losses_stay_finite_and_exact_at_extreme_logits(kind):
    # log(sigmoid(-200)) underflows to -inf in float32; softplus gives the exact 200.
    real = torch.tensor([-200.0], requires_grad=True)
    fake = torch.tensor([200.0], requires_grad=True)
    loss = get_loss(kind)
    d = loss.d_loss(real, fake)
    assert d.item() == pytest.approx(400.0, rel=1e-6)
    d.backward()
    assert torch.isfinite(real.grad).all() and torch.isfinite(fake.grad).all()
    g = loss.g_loss(fake)
    assert math.isfinite(g.item())


def test_saturating_generator_gradient_vanishes_where_nonsaturating_does_not():
    # When D confidently rejects fakes (logit -10), the minimax G gradient is ~sigmoid(-10) ~ 4.5e-5
    # while the non-saturating one is ~1: the reason nonsaturating is the default.
    grads = {}
    for kind in ("minimax", "nonsaturating"):
        fake = torch.tensor([-10.0], requires_grad=True)
        get_loss(kind).g_loss(fake).backward()
        grads[kind] = fake.grad.abs().item()
    assert grads["minimax"] == pytest.approx(torch.sigmoid(torch.tensor(-10.0)).item(), rel=1e-4)
    assert grads["nonsaturating"] == pytest.approx(1 - torch.sigmoid(torch.tensor(-10.0)).item(), rel=1e-4)


def test_unknown_loss_is_refused():
    with pytest.raises(ValueError, match="unknown loss"):
        get_loss("wgan")


class Linear(torch.nn.Module):
    """l(x) = <w, x>: its input gradient is w everywhere."""

    def __init__(self, w: torch.Tensor) -> None:
        super().__init__()
        self.w = torch.nn.Parameter(w)

    def forward(self, x):
        return (x * self.w).flatten(1).sum(1)


def test_r1_penalty_of_a_linear_critic_is_its_squared_norm():
    w = torch.full((1, 2, 2), 0.5)  # |w|^2 = 4 * 0.25 = 1
    w[0, 0, 0] = 1.5  # |w|^2 = 2.25 + 0.75 = 3
    critic = Linear(w)
    x = torch.randn(5, 1, 2, 2, requires_grad=True)
    assert r1_penalty(critic(x), x).item() == pytest.approx(3.0, rel=1e-6)


def test_gradient_penalty_of_a_linear_critic():
    critic = Linear(torch.full((1, 2, 2), 1.0))  # |grad| = 2 -> (2 - 1)^2 = 1
    real, fake = torch.randn(4, 1, 2, 2), torch.randn(4, 1, 2, 2)
    gp = gradient_penalty(critic, real, fake, generator=torch.Generator().manual_seed(0))
    assert gp.item() == pytest.approx(1.0, rel=1e-6)
    gp.backward()  # differentiable w.r.t. the critic's weights (create_graph=True)
    assert critic.w.grad is not None and torch.isfinite(critic.w.grad).all()
