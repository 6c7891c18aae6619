"""Every preset and discriminator norm: D(G(z)) runs, backprops, stays finite; EMA/export needs."""

from __future__ import annotations

import copy
import itertools

import pytest
import torch

from deconvgan.config import ARCHITECTURES, ModelConfig
from deconvgan.errors import ConfigError
from deconvgan.models import MODEL_REGISTRY, build_discriminator, build_generator, build_seed_generator, example_inputs

SMALL = dict(latent_dim=16, g_width=8, d_width=8, max_width=32, mlp_hidden=32)


def make_cfg(arch: str, **kwargs: object) -> ModelConfig:
    if arch == "seed":  # fixed widths at 64x64: small only in the latent and channel count
        return ModelConfig(arch="seed", resolution=64, latent_dim=16, **kwargs)
    if arch == "spatial":  # a 16-pixel crop: a 2x2-cell field through three blocks
        return ModelConfig(arch=arch, resolution=16, levels=3, **SMALL, **kwargs)
    return ModelConfig(arch=arch, resolution=16, **SMALL, **kwargs)


def test_registry_covers_every_config_architecture() -> None:
    assert tuple(MODEL_REGISTRY) == ARCHITECTURES


@pytest.mark.parametrize(
    "arch,d_norm,g_norm",
    list(itertools.product(ARCHITECTURES, ("batch", "spectral", "none"), ("batch", "none"))),
)
def test_d_of_g_runs_and_backprops(arch: str, d_norm: str, g_norm: str) -> None:
    cfg = make_cfg(arch, d_norm=d_norm, g_norm=g_norm, channels=3, mlp_d_hidden=16 if d_norm == "none" else 0)
    torch.manual_seed(1)
    generator, discriminator = build_generator(cfg), build_discriminator(cfg)
    assert generator.config is cfg and discriminator.config is cfg
    z = torch.randn_like(example_inputs(cfg, 4)[0])  # [4, latent_dim], or a latent field for spatial
    assert generator.latent_dim == (16 if arch != "spatial" else z.shape[1])
    images = generator(z)
    assert images.shape == (4, 3, cfg.resolution, cfg.resolution)
    assert images.abs().max() <= 1.0
    logits = discriminator(images)
    patches = (cfg.resolution // 2**cfg.levels) ** 2 if arch == "spatial" else None  # one logit per patch
    assert logits.shape == ((4, patches) if patches else (4,)) and torch.isfinite(logits).all()
    # the usual non-saturating step, through both networks
    torch.nn.functional.softplus(-logits).mean().backward()
    for net in (generator, discriminator):
        grads = [p.grad for p in net.parameters()]
        assert all(g is not None and torch.isfinite(g).all() for g in grads)
    generator.eval()
    discriminator.eval()
    with torch.no_grad():
        assert torch.isfinite(discriminator(generator(z))).all()


def test_spectral_norm_wraps_every_weight_layer() -> None:
    discriminator = build_discriminator(make_cfg("dcgan", d_norm="spectral"))
    layers = [m for m in discriminator.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    assert layers and all(torch.nn.utils.parametrize.is_parametrized(m, "weight") for m in layers)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in discriminator.modules())


def test_batch_norm_layout_follows_dcgan() -> None:
    """No norm on D's first layer; bias only where no BatchNorm follows."""
    cfg = make_cfg("dcgan")
    discriminator, generator = build_discriminator(cfg), build_generator(cfg)
    names = [n for n, _ in discriminator.net.named_children()]
    assert names == ["conv1", "act1", "conv2", "norm2", "act2", "flatten", "logit"]
    assert discriminator.net.conv1.bias is not None and discriminator.net.conv2.bias is None
    assert generator.net.project.bias is None and generator.net.up1.conv.bias is None
    assert generator.net.up2.conv.bias is not None  # the image layer: no norm after it


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_deepcopy_gives_an_equal_independent_copy(arch: str) -> None:
    """The training loop keeps an EMA generator as a deepcopy."""
    generator = build_generator(make_cfg(arch))
    discriminator = build_discriminator(make_cfg(arch, d_norm="spectral"))
    z = torch.randn_like(example_inputs(make_cfg(arch), 2)[0])
    for net, inp in ((generator, z), (discriminator, generator(z).detach())):
        twin = copy.deepcopy(net).eval()
        net.eval()
        with torch.no_grad():
            assert torch.equal(net(inp), twin(inp))
            next(twin.parameters()).add_(1.0)
            assert not torch.equal(net(inp), twin(inp))


@pytest.mark.parametrize("upsample", ["transposed", "resize", "pixelshuffle"])
def test_generator_exports_without_data_dependent_control_flow(upsample: str) -> None:
    """torch.export traces the graph strictly: it fails on Python branches over tensor values."""
    generator = build_generator(make_cfg("dcgan", upsample=upsample, resize_mode="bilinear")).eval()
    z = torch.randn(2, 16)
    program = torch.export.export(generator, (z,))
    torch.testing.assert_close(program.module()(z), generator(z))


def test_seed_builders_refuse_other_resolutions() -> None:
    with pytest.raises(ConfigError, match="64x64"):
        build_seed_generator(make_cfg("dcgan"))
