"""Kernel sizes 2..7 keep every stride-2 side exact; g_depth / d_depth add layers, and 0 adds nothing."""

from __future__ import annotations

import itertools

import pytest
import torch
from torch import nn

from deconvgan.config import ModelConfig
from deconvgan.errors import ConfigError
from deconvgan.models import build_discriminator, build_generator, fuse_for_inference

SMALL = dict(latent_dim=8, g_width=4, d_width=4, max_width=8)


@pytest.mark.parametrize("resolution,kernel_size,upsample", list(itertools.product(
    (16, 28, 32, 64), range(2, 8), ("transposed", "resize", "pixelshuffle"))))
def test_every_kernel_gives_exact_shapes(resolution: int, kernel_size: int, upsample: str) -> None:
    cfg = ModelConfig(resolution=resolution, kernel_size=kernel_size, upsample=upsample, **SMALL)
    torch.manual_seed(0)
    generator, discriminator = build_generator(cfg).eval(), build_discriminator(cfg).eval()
    sides = []  # every feature map's side through G, then through D
    hooks = [m.register_forward_hook(lambda _m, _i, out: sides.append(out.shape[-1]))
             for m in (*generator.net, *discriminator.net) if not isinstance(m, (nn.Flatten, nn.Linear))]
    with torch.no_grad():
        images = generator(torch.randn(2, 8))
        logits = discriminator(images)
    for hook in hooks:
        hook.remove()
    assert images.shape == (2, 1, resolution, resolution) and logits.shape == (2,)
    base = resolution
    while base % 2 == 0 and base // 2 >= 4:
        base //= 2
    # each side is the base times a power of two: no map ever came out one pixel off and got cropped
    assert all(side % base == 0 and (side // base) & (side // base - 1) == 0 for side in sides), sides


# The plain DCGAN pair at 28x28 before depth existed: names and shapes of every tensor, and parameter counts.
PLAIN_G = [("net.project.weight", (6272, 100)), ("net.norm0.weight", (128,)), ("net.norm0.bias", (128,)),
           ("net.norm0.running_mean", (128,)), ("net.norm0.running_var", (128,)),
           ("net.norm0.num_batches_tracked", ()), ("net.up1.conv.weight", (128, 64, 4, 4)),
           ("net.norm1.weight", (64,)), ("net.norm1.bias", (64,)), ("net.norm1.running_mean", (64,)),
           ("net.norm1.running_var", (64,)), ("net.norm1.num_batches_tracked", ()),
           ("net.up2.conv.weight", (64, 1, 4, 4)), ("net.up2.conv.bias", (1,))]
PLAIN_D = [("net.conv1.weight", (64, 1, 4, 4)), ("net.conv1.bias", (64,)), ("net.conv2.weight", (128, 64, 4, 4)),
           ("net.norm2.weight", (128,)), ("net.norm2.bias", (128,)), ("net.norm2.running_mean", (128,)),
           ("net.norm2.running_var", (128,)), ("net.norm2.num_batches_tracked", ()),
           ("net.logit.weight", (1, 6272)), ("net.logit.bias", (1,))]


def _tensors(model: nn.Module) -> list[tuple[str, tuple[int, ...]]]:
    return [(name, tuple(t.shape)) for name, t in model.state_dict().items()]


def test_depth_zero_is_the_plain_pair() -> None:
    cfg = ModelConfig(resolution=28)
    assert (cfg.g_depth, cfg.d_depth) == (0, 0)
    generator, discriminator = build_generator(cfg), build_discriminator(cfg)
    assert _tensors(generator) == PLAIN_G and _tensors(discriminator) == PLAIN_D
    assert sum(p.numel() for p in generator.parameters()) == 759_681
    assert sum(p.numel() for p in discriminator.parameters()) == 138_689
    # the same seed draws the same initial values whether depth 0 is implicit or explicit
    explicit = ModelConfig(resolution=28, g_depth=0, d_depth=0)
    for build in (build_generator, build_discriminator):
        torch.manual_seed(5)
        a = build(cfg).state_dict()
        torch.manual_seed(5)
        b = build(explicit).state_dict()
        assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("upsample,d_norm", [("transposed", "batch"), ("resize", "spectral"), ("pixelshuffle", "none")])
def test_depth_adds_same_size_layers_per_resolution(upsample: str, d_norm: str) -> None:
    cfg = ModelConfig(resolution=28, upsample=upsample, d_norm=d_norm, g_depth=2, d_depth=1, **SMALL)
    generator, discriminator = build_generator(cfg), build_discriminator(cfg)
    g_names, d_names = list(generator.net._modules), list(discriminator.net._modules)
    # G: two extra convs at 7x7 and at 14x14 (its two hidden resolutions); D: one after each strided conv
    assert [n for n in g_names if "_" in n and n.startswith("conv")] == ["conv0_1", "conv0_2", "conv1_1", "conv1_2"]
    assert [n for n in d_names if "_" in n and n.startswith("conv")] == ["conv1_1", "conv2_1"]
    assert g_names.index("conv1_1") == g_names.index("act1") + 1
    assert ("norm1_1" in d_names) == (d_norm == "batch")
    z = torch.randn(4, 8)
    images = generator(z)
    assert images.shape == (4, 1, 28, 28) and discriminator(images).shape == (4,)
    deeper = sum(p.numel() for p in generator.parameters())
    plain = build_generator(ModelConfig(resolution=28, upsample=upsample, **SMALL))
    shallow = sum(p.numel() for p in plain.parameters())
    assert deeper - shallow == 2 * (8 * 8 * 9 + 2 * 8) + 2 * (4 * 4 * 9 + 2 * 4)  # conv (no bias) + BN per layer
    # the extra BatchNorms fold into their convs like the others
    generator.eval()
    with torch.no_grad():
        torch.testing.assert_close(fuse_for_inference(generator)(z), generator(z), atol=1e-5, rtol=1e-4)


def test_depth_is_refused_where_it_does_not_apply() -> None:
    with pytest.raises(ConfigError, match=r"model.g_depth=1: extra layers .* not mlp"):
        ModelConfig(arch="mlp", resolution=28, g_depth=1)
    with pytest.raises(ConfigError, match=r"model.d_depth=-1 must be >= 0"):
        ModelConfig(resolution=28, d_depth=-1)
