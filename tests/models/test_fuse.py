"""BatchNorm folding: the fused copy computes the eval-mode generator's function, without BatchNorms."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from deconvgan.config import ModelConfig
from deconvgan.models import build_generator, fuse_for_inference
from deconvgan.models.fuse import count_batchnorms
from deconvgan.sampling import generate, latents_for_seeds

TINY = {"resolution": 16, "latent_dim": 8, "g_width": 8, "max_width": 16}


def randomise_batchnorms(model: nn.Module, seed: int = 0) -> nn.Module:
    """Non-trivial running statistics and affine parameters (at init they are 0/1, a near no-op fold)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.running_mean is not None:
                c = m.num_features
                m.running_mean.copy_(torch.randn(c, generator=gen) * 0.5)
                m.running_var.copy_(torch.rand(c, generator=gen) * 2.8 + 0.2)
                if m.weight is not None:
                    m.weight.copy_(1 + 0.3 * torch.randn(c, generator=gen))
                    m.bias.copy_(0.3 * torch.randn(c, generator=gen))
    return model


@pytest.mark.parametrize("overrides", [
    {"upsample": "transposed"},
    {"upsample": "resize"},
    {"upsample": "resize", "resize_mode": "bilinear", "kernel_size": 3},
    {"upsample": "pixelshuffle"},
    {"upsample": "pixelshuffle", "kernel_size": 3, "resolution": 28, "channels": 3},
    {"resolution": 32, "kernel_size": 5},
    {"arch": "mlp"},
    {"g_norm": "none"},
], ids=lambda o: "-".join(f"{k}={v}" for k, v in o.items()))
def test_fused_generator_matches_eval_mode(overrides):
    torch.manual_seed(0)
    cfg = ModelConfig(**{**TINY, **overrides})
    generator = randomise_batchnorms(build_generator(cfg)).train()
    before = {k: v.clone() for k, v in generator.state_dict().items()}
    fused = fuse_for_inference(generator)
    assert count_batchnorms(fused) == 0
    assert not fused.training and not any(p.requires_grad for p in fused.parameters())
    # the original is untouched, including its train/eval flag
    assert generator.training
    assert all(torch.equal(before[k], v) for k, v in generator.state_dict().items())
    z = torch.randn(7, cfg.latent_dim)
    with torch.inference_mode():
        expected, got = generator.eval()(z), fused(z)
    assert got.shape == expected.shape
    assert (got - expected).abs().max().item() <= 1e-5


def test_seed_preset_folds_completely():
    torch.manual_seed(0)
    generator = randomise_batchnorms(build_generator(ModelConfig(arch="seed", resolution=64, channels=3))).eval()
    fused = fuse_for_inference(generator)
    assert count_batchnorms(generator) == 4 and count_batchnorms(fused) == 0
    z = torch.randn(2, 100)
    with torch.inference_mode():
        assert (fused(z) - generator(z)).abs().max().item() <= 1e-5


def test_plain_layers_with_biases_fold_and_unfoldable_norms_stay():
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.BatchNorm1d(6),  # first in its Sequential: nothing to fold into, stays
        nn.Linear(6, 4 * 3 * 3),  # has a bias: the fold must keep it
        nn.BatchNorm1d(36),
        nn.Unflatten(1, (4, 3, 3)),
        nn.ConvTranspose2d(4, 5, 3, stride=2, bias=True),
        nn.BatchNorm2d(5),
        nn.ReLU(),
        nn.BatchNorm2d(5),  # after a ReLU: not affine in its input, stays
        nn.Conv2d(5, 3, 3, bias=False),
        nn.BatchNorm2d(3, affine=False),
        nn.Conv2d(3, 2, 1),
        nn.BatchNorm2d(2, track_running_stats=False),  # batch statistics even in eval: stays
    )
    randomise_batchnorms(model)
    fused = fuse_for_inference(model)
    assert [type(m).__name__ for m in fused][:3] == ["BatchNorm1d", "Linear", "Identity"]
    assert isinstance(fused[5], nn.Identity) and isinstance(fused[7], nn.BatchNorm2d)
    assert isinstance(fused[9], nn.Identity) and fused[8].bias is not None
    assert count_batchnorms(fused) == 3
    x = torch.randn(4, 6)
    with torch.inference_mode():
        assert (fused(x) - model.eval()(x)).abs().max().item() <= 1e-5


def test_generate_with_the_fused_model_gives_the_same_images():
    torch.manual_seed(0)
    cfg = ModelConfig(**TINY, upsample="pixelshuffle")
    generator = randomise_batchnorms(build_generator(cfg))
    latents = latents_for_seeds(list(range(16)), cfg.latent_dim)
    fused, plain = generate(generator, latents), generate(generator, latents, fuse=False)
    # uint8 rounding may flip a pixel lying within float error of a rounding boundary, by one level at most
    assert (fused.int() - plain.int()).abs().max().item() <= 1
    assert (fused != plain).float().mean().item() < 0.01
