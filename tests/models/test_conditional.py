"""Conditional batch norm, the projection discriminator, and how classes route through G and D."""

from __future__ import annotations

import pytest
import torch

from deconvgan.configio import load_config
from deconvgan.errors import ConfigError
from deconvgan.models import build_discriminator, build_generator
from deconvgan.models.cbn import ConditionalBatchNorm2d
from deconvgan.models.conditional import ConditionalDCGANGenerator, ProjectionDiscriminator, balanced_labels


def _model(*overrides: str):
    return load_config(None, ["model.resolution=16", "model.latent_dim=8", "model.g_width=8", "model.d_width=8",
                              "model.max_width=16", "model.num_classes=4", *overrides]).model


def test_conditional_batch_norm_applies_the_chosen_class_affine_exactly():
    torch.manual_seed(0)
    cbn = ConditionalBatchNorm2d(3, num_classes=5)
    with torch.no_grad():
        cbn.weight.copy_(torch.randn(5, 3))
        cbn.bias.copy_(torch.randn(5, 3))
    x, labels = torch.randn(6, 3, 4, 4), torch.tensor([4, 0, 2, 2, 1, 3])
    out = cbn(x, labels)  # training mode: batch statistics
    mean, var = x.mean((0, 2, 3), keepdim=True), x.var((0, 2, 3), unbiased=False, keepdim=True)
    normalised = (x - mean) / torch.sqrt(var + cbn.bn.eps)
    for i, c in enumerate(labels.tolist()):
        want = normalised[i] * cbn.weight[c].view(3, 1, 1) + cbn.bias[c].view(3, 1, 1)
        assert torch.allclose(out[i], want, atol=1e-5), i


def test_projection_term_is_the_inner_product_of_class_embedding_and_features():
    torch.manual_seed(1)
    D = build_discriminator(_model()).eval()
    assert isinstance(D, ProjectionDiscriminator)
    x, labels = torch.randn(5, 1, 16, 16), torch.tensor([0, 3, 1, 3, 2])
    with torch.no_grad():
        phi = D.features(x)  # [5, F]
        plain = D.net.logit(phi).squeeze(1)
        got = D(x, labels)
    assert torch.allclose(got - plain, (D.embed.weight[labels] * phi).sum(1), atol=1e-5)
    with torch.no_grad():
        D.embed.weight.zero_()
        assert torch.allclose(D(x, labels), plain, atol=1e-6)  # no embedding: the unconditional logit


def test_the_class_changes_the_generated_image_and_nothing_else_does():
    torch.manual_seed(2)
    G = build_generator(_model()).eval()
    assert isinstance(G, ConditionalDCGANGenerator)
    with torch.no_grad():  # classes start alike (see below); give each its own scale and shift, as training does
        for cbn in [m for m in G.modules() if isinstance(m, ConditionalBatchNorm2d)]:
            cbn.weight.normal_(1.0, 0.3)
            cbn.bias.normal_(0.0, 0.3)
    z = torch.randn(1, 8).expand(4, 8)
    with torch.no_grad():
        same = G(z, torch.zeros(4, dtype=torch.long))
        different = G(z, torch.arange(4))
    assert torch.equal(same[0], same[3])
    for a in range(4):
        for b in range(a + 1, 4):
            assert (different[a] - different[b]).abs().max() > 1e-3, (a, b)
    with torch.no_grad():  # default labels: the balanced sequence 0, 1, 2, 3, 0, ...
        assert torch.equal(G(z), different) and torch.equal(balanced_labels(6, 4), torch.tensor([0, 1, 2, 3, 0, 1]))


def test_classes_start_alike_and_only_the_chosen_class_gets_gradients():
    torch.manual_seed(3)
    G = build_generator(_model())
    cbn = G.net.norm0
    assert torch.equal(cbn.weight[0], cbn.weight[3]) and not torch.equal(cbn.weight[0], torch.ones_like(cbn.weight[0]))
    G(torch.randn(4, 8), torch.tensor([1, 1, 2, 2])).sum().backward()
    grad = cbn.weight.grad
    assert grad[[0, 3]].abs().sum() == 0 and grad[1].abs().sum() > 0 and grad[2].abs().sum() > 0


def test_unconditional_models_are_unchanged_by_the_option():
    torch.manual_seed(4)
    plain = build_generator(_model("model.num_classes=0"))
    assert not isinstance(plain, ConditionalDCGANGenerator)
    assert not any(isinstance(m, ConditionalBatchNorm2d) for m in plain.modules())


@pytest.mark.parametrize(("overrides", "needle"), [
    (("model.arch=mlp",), "model.arch=dcgan and spatial only, not mlp"),
    (("model.d_pack=2", "train.batch_size=8"), "model.d_pack=1"),
    (("model.g_norm=none",), "model.g_norm=batch"),
    (("model.num_classes=-1",), "model.num_classes=-1"),
])
def test_unsupported_combinations_are_one_line_errors(overrides, needle):
    with pytest.raises(ConfigError, match=needle) as info:
        load_config(None, ["model.num_classes=3", *overrides])
    assert "\n" not in str(info.value)
