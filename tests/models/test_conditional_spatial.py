"""Class-conditional texture models: conditional batch norm in the spatial generator, a projection per patch in D."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from deconvgan.config import ModelConfig
from deconvgan.configio import load_config
from deconvgan.errors import ConfigError
from deconvgan.models import build_discriminator, build_generator, fuse_for_inference
from deconvgan.models.cbn import ConditionalBatchNorm2d
from deconvgan.models.conditional import ConditionalSpatialGenerator, PatchProjectionDiscriminator
from deconvgan.models.fuse import count_batchnorms
from deconvgan.models.spatial import PatchDiscriminator, SpatialGenerator

K = 3


def _cfg(**overrides) -> ModelConfig:
    return ModelConfig(**(dict(arch="spatial", resolution=32, channels=3, levels=3, g_width=8, d_width=8,
                               local_channels=4, global_channels=2, num_classes=K) | overrides))


def distinct_classes(G: nn.Module) -> nn.Module:
    """Give every class its own scale and shift (they start alike), and non-trivial running statistics."""
    with torch.no_grad():
        for cbn in [m for m in G.modules() if isinstance(m, ConditionalBatchNorm2d)]:
            cbn.weight.normal_(1.0, 0.5)
            cbn.bias.normal_(0.0, 0.5)
            cbn.bn.running_mean.uniform_(-0.2, 0.2)
            cbn.bn.running_var.uniform_(0.5, 2.0)
    return G


def test_builders_and_exact_shapes():
    torch.manual_seed(0)
    cfg = _cfg()
    G, D = build_generator(cfg), build_discriminator(cfg)
    assert isinstance(G, ConditionalSpatialGenerator) and isinstance(D, PatchProjectionDiscriminator)
    assert sum(isinstance(m, ConditionalBatchNorm2d) for m in G.modules()) == 2  # norm1, norm2 (levels - 1)
    assert not any(type(m) is nn.BatchNorm2d for m in G.net.children())
    labels = torch.tensor([2, 0, 1, 2, 1])
    images = G(torch.randn(5, G.latent_dim, 3, 5), labels)  # any field size
    assert images.shape == (5, 3, 24, 40)
    assert D(images, labels).shape == (5, 3 * 5)  # one logit per 8x8-pixel cell
    plain = _cfg(num_classes=0)
    assert type(build_generator(plain)) is SpatialGenerator and type(build_discriminator(plain)) is PatchDiscriminator


def test_each_class_draws_its_own_texture_from_the_same_field():
    torch.manual_seed(1)
    G = distinct_classes(build_generator(_cfg())).eval()
    field = torch.randn(1, G.latent_dim, 4, 4).expand(K, -1, -1, -1)
    with torch.no_grad():
        out = G(field, torch.arange(K))
        torch.testing.assert_close(G(field, torch.zeros(K, dtype=torch.long))[2], G(field[:1], torch.tensor([0]))[0],
                                   atol=1e-6, rtol=0)  # class 0 of the batch is class 0 alone
    for a in range(K):
        for b in range(a + 1, K):
            assert (out[a] - out[b]).abs().mean() > 1e-2, (a, b)


def test_patch_projection_adds_the_class_embedding_times_the_features_at_every_patch():
    torch.manual_seed(2)
    D = build_discriminator(_cfg()).eval()
    x, labels = torch.randn(4, 3, 32, 40), torch.tensor([0, 2, 1, 2])
    with torch.no_grad():
        phi = D.features(x)  # [4, F, 4, 5]
        plain = D.net.logit(phi).flatten(1)  # the unconditional patch logits
        got = D(x, labels)
        want = (D.embed.weight[labels][:, :, None, None] * phi).sum(1).flatten(1)  # [4, 20]
        assert torch.allclose(got - plain, want, atol=1e-5)
        other = D(x, (labels + 1) % K)  # the label routes through D: another class, other logits
        assert (other - got).abs().min() > 0
        D.embed.weight.zero_()
        assert torch.allclose(D(x, labels), plain, atol=1e-6)


def test_spectral_norm_covers_the_embedding():
    D = build_discriminator(_cfg(d_norm="spectral"))
    assert hasattr(D.embed, "parametrizations") and "weight" in D.embed.parametrizations


def test_fusing_folds_the_normalisation_and_keeps_the_class_affine():
    torch.manual_seed(3)
    G = distinct_classes(build_generator(_cfg(tileable=True))).eval()
    fused = fuse_for_inference(G)
    assert count_batchnorms(fused) == 0 and count_batchnorms(G) == 2
    field, labels = torch.randn(3, G.latent_dim, 4, 6), torch.tensor([1, 0, 2])
    with torch.no_grad():
        torch.testing.assert_close(fused(field, labels), G(field, labels), atol=1e-5, rtol=0)


def test_only_the_drawn_class_gets_gradients():
    torch.manual_seed(4)
    G = build_generator(_cfg())
    G(torch.randn(4, G.latent_dim, 4, 4), torch.tensor([1, 1, 1, 1])).sum().backward()
    grad = G.net.norm1.weight.grad
    assert grad[[0, 2]].abs().sum() == 0 and grad[1].abs().sum() > 0


@pytest.mark.parametrize(("overrides", "needle"), [
    (("model.arch=mlp",), "model.arch=dcgan and spatial only, not mlp"),
    (("model.g_norm=none",), "model.g_norm=batch"),
])
def test_conditional_texture_refusals_are_one_line(overrides, needle):
    base = ["model.arch=spatial", "model.resolution=64", "data.source=folder", "data.path=x", "model.num_classes=2"]
    with pytest.raises(ConfigError, match=needle) as info:
        load_config(None, [*base, *overrides])
    assert "\n" not in str(info.value)
    assert load_config(None, base).model.num_classes == 2  # the spatial arch itself is accepted
