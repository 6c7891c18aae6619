"""DCGAN initialisation, seeding, and ICNR inside a built generator."""

from __future__ import annotations

import pytest
import torch

from deconvgan.config import ModelConfig
from deconvgan.models import build_discriminator, build_generator, init_weights
from deconvgan.models.init import INIT_STD


def test_weight_statistics_follow_dcgan() -> None:
    cfg = ModelConfig(resolution=32, channels=3, g_width=32, d_width=32, max_width=128)
    torch.manual_seed(0)
    for net in (build_generator(cfg), build_discriminator(cfg)):
        for module in net.modules():
            if isinstance(module, (torch.nn.Conv2d, torch.nn.ConvTranspose2d, torch.nn.Linear)):
                if module.weight.numel() >= 10_000:  # enough samples for a tight estimate
                    assert module.weight.std().item() == pytest.approx(INIT_STD, rel=0.05)
                    assert abs(module.weight.mean().item()) < 0.002
                if module.bias is not None:
                    assert torch.equal(module.bias, torch.zeros_like(module.bias))
            elif isinstance(module, torch.nn.BatchNorm2d):
                assert (module.weight - 1).abs().max() < 6 * INIT_STD
                assert module.weight.std() > 0  # drawn, not constant
                assert torch.equal(module.bias, torch.zeros_like(module.bias))


@pytest.mark.parametrize(
    "cfg",
    [
        ModelConfig(resolution=16, g_width=8, d_width=8, upsample="pixelshuffle"),
        ModelConfig(resolution=16, g_width=8, d_width=8, d_norm="spectral", upsample="resize"),
        ModelConfig(arch="mlp", resolution=16, mlp_hidden=16, mlp_d_hidden=8, d_norm="spectral"),
    ],
    ids=["dcgan-pixelshuffle", "dcgan-spectral", "mlp"],
)
def test_same_seed_same_model(cfg: ModelConfig) -> None:
    def build(seed: int) -> dict[str, torch.Tensor]:
        torch.manual_seed(seed)
        g, d = build_generator(cfg), build_discriminator(cfg)
        return {f"{tag}.{k}": v for tag, net in (("g", g), ("d", d)) for k, v in net.state_dict().items()}

    first, second, other = build(7), build(7), build(8)
    assert first.keys() == second.keys()
    assert all(torch.equal(first[k], second[k]) for k in first)
    assert any(not torch.equal(first[k], other[k]) for k in first)


def test_generator_pixelshuffle_blocks_are_icnr() -> None:
    """Every sub-pixel conv holds each kernel 4 times in a row (channels 4c..4c+3)."""
    torch.manual_seed(0)
    generator = build_generator(ModelConfig(resolution=16, g_width=8, upsample="pixelshuffle", channels=3))
    convs = [generator.net.up1.conv, generator.net.up2.conv]
    for conv in convs:
        w = conv.weight.reshape(-1, 4, *conv.weight.shape[1:])  # [C_out, 4, C_in, k, k]
        assert torch.equal(w, w[:, :1].expand_as(w))
        assert w[:, 0].std().item() == pytest.approx(INIT_STD, rel=0.2)


def test_init_weights_reaches_spectral_norm_originals() -> None:
    torch.manual_seed(0)
    discriminator = build_discriminator(ModelConfig(resolution=16, d_width=8, d_norm="spectral"))
    original = discriminator.net.conv2.parametrizations.weight.original
    with torch.no_grad():
        original.fill_(5.0)
    init_weights(discriminator)
    assert original.std().item() == pytest.approx(INIT_STD, rel=0.2)
