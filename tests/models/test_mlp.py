"""The mlp baseline computes exactly G(z) = tanh(W1 s(W2 z + b2) + b1) and D's logit W3 x + b4."""

from __future__ import annotations

import pytest
import torch

from deconvgan.config import ModelConfig
from deconvgan.models import build_discriminator, build_generator

ACTIVATIONS = {"sigmoid": torch.sigmoid, "tanh": torch.tanh, "relu": torch.relu}


def set_linear(layer: torch.nn.Linear, weight: torch.Tensor, bias: torch.Tensor) -> None:
    with torch.no_grad():
        layer.weight.copy_(weight)
        layer.bias.copy_(bias)


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_generator_formula(activation: str) -> None:
    cfg = ModelConfig(
        arch="mlp", resolution=8, channels=3, latent_dim=5, mlp_hidden=7, mlp_activation=activation
    )
    generator = build_generator(cfg).double()
    pixels = 3 * 8 * 8
    gen = torch.Generator().manual_seed(0)
    w1, b1 = torch.randn(pixels, 7, generator=gen), torch.randn(pixels, generator=gen)
    w2, b2 = torch.randn(7, 5, generator=gen), torch.randn(7, generator=gen)
    set_linear(generator.net.hidden, w2, b2)  # W2, b2
    set_linear(generator.net.out, w1, b1)  # W1, b1
    z = torch.randn(4, 5, generator=gen).double()
    s = ACTIVATIONS[activation]
    expected = torch.tanh(s(z @ w2.double().T + b2) @ w1.double().T + b1).reshape(4, 3, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(generator(z), expected, rtol=1e-12, atol=1e-12)


def test_discriminator_is_one_affine_map() -> None:
    cfg = ModelConfig(arch="mlp", resolution=8, channels=1)
    discriminator = build_discriminator(cfg).double()
    gen = torch.Generator().manual_seed(1)
    w3, b4 = torch.randn(1, 64, generator=gen), torch.randn(1, generator=gen)
    set_linear(discriminator.net.out, w3, b4)
    x = torch.randn(5, 1, 8, 8, generator=gen).double()
    with torch.no_grad():
        logits = discriminator(x)
    expected = (x.reshape(5, 64) @ w3.double().T + b4).squeeze(1)
    torch.testing.assert_close(logits, expected, rtol=1e-12, atol=1e-12)
    assert [n for n, _ in discriminator.net.named_children()] == ["flatten", "out"]  # no hidden layer


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_discriminator_hidden_layer(activation: str) -> None:
    cfg = ModelConfig(arch="mlp", resolution=8, channels=1, mlp_d_hidden=6, mlp_activation=activation)
    discriminator = build_discriminator(cfg).double()
    gen = torch.Generator().manual_seed(2)
    w5, b5 = torch.randn(6, 64, generator=gen), torch.randn(6, generator=gen)
    w3, b4 = torch.randn(1, 6, generator=gen), torch.randn(1, generator=gen)
    set_linear(discriminator.net.hidden, w5, b5)
    set_linear(discriminator.net.out, w3, b4)
    x = torch.randn(3, 1, 8, 8, generator=gen).double()
    expected = ACTIVATIONS[activation](x.reshape(3, 64) @ w5.double().T + b5) @ w3.double().T + b4
    with torch.no_grad():
        torch.testing.assert_close(discriminator(x), expected.squeeze(1), rtol=1e-12, atol=1e-12)
