"""Textures of a chosen class: window by window equal to one whole pass, seamless when tileable, per class."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from deconvgan.config import ModelConfig
from deconvgan.errors import ConfigError
from deconvgan.models import build_generator, fuse_for_inference
from deconvgan.models.cbn import ConditionalBatchNorm2d
from deconvgan.tiles import (
    generate_texture,
    generate_window,
    sample_textures,
    to_pixels,
    whole_texture,
    write_texture_png,
)

TOLERANCE = 1e-4  # as in test_tiles.py: float rounding of convolutions of different sizes only
K = 3


def conditional_texture_model(**overrides) -> nn.Module:
    cfg = ModelConfig(**(dict(arch="spatial", resolution=32, channels=3, levels=3, g_width=8, local_channels=4,
                              global_channels=2, num_classes=K) | overrides))
    torch.manual_seed(0)
    G = build_generator(cfg)
    with torch.no_grad():  # large weights, distinct classes, non-trivial statistics: outputs far from 0 and apart
        for module in G.modules():
            if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
                module.weight.normal_(0, 0.3)
            if isinstance(module, ConditionalBatchNorm2d):
                module.weight.normal_(1.0, 0.5)
                module.bias.normal_(0.0, 0.5)
                module.bn.running_mean.uniform_(-0.2, 0.2)
                module.bn.running_var.uniform_(0.5, 2.0)
    return fuse_for_inference(G)


@pytest.mark.parametrize("mode", ["transposed", "resize"])
@pytest.mark.parametrize("tileable", [False, True])
def test_tiles_equal_one_whole_pass_for_every_class(mode, tileable):
    G = conditional_texture_model(upsample=mode, tileable=tileable, periodic_channels=0 if tileable else 2)
    wholes = []
    for k in range(K):
        whole = whole_texture(G, 5, 64, 96, tileable=tileable, class_id=k)
        tiled = generate_texture(G, 5, 64, 96, tileable=tileable, tile=32, class_id=k)
        assert whole.std() > 0.2
        torch.testing.assert_close(tiled, whole, atol=TOLERANCE, rtol=0)
        wholes.append(whole)
    for a in range(K):  # the same seed, another class: another texture
        for b in range(a + 1, K):
            assert (wholes[a] - wholes[b]).abs().mean() > 0.05, (a, b)


def test_a_tileable_class_texture_repeats_with_its_size():
    G = conditional_texture_model(tileable=True)
    for k in range(K):
        tile = generate_texture(G, 2, 48, 64, tileable=True, class_id=k)
        straddling = generate_window(G, 2, 24, 32, 48, 64, period=(48, 64), class_id=k)  # across both seams
        torch.testing.assert_close(straddling, torch.roll(tile, (-24, -32), dims=(1, 2)), atol=TOLERANCE, rtol=0)


def test_png_and_samples_take_the_class(tmp_path):
    G = conditional_texture_model(tileable=True)
    path = write_texture_png(G, 4, 48, 64, tmp_path / "leaves.png", tileable=True, tile=16, class_id=1)
    with Image.open(path) as image:
        assert np.array_equal(np.asarray(image), to_pixels(generate_texture(G, 4, 48, 64, tileable=True, class_id=1)))
    samples = sample_textures(G, [0, 1, 2, 3], 32, tileable=True, fuse=False)  # default: seed s in class s mod K
    assert samples.shape == (4, 3, 32, 32)
    assert torch.equal(samples[3], sample_textures(G, [3], 32, tileable=True, fuse=False, labels=[0])[0])
    assert not torch.equal(samples[3], sample_textures(G, [3], 32, tileable=True, fuse=False, labels=[2])[0])


@pytest.mark.parametrize(("model_classes", "class_id", "needle"), [
    (K, None, r"draws one of its 3 classes; choose a class id 0\.\.2"),
    (K, 3, r"class 3: .*choose a class id 0\.\.2"),
    (0, 1, r"not class-conditional \(model.num_classes=0\); leave the class out"),
])
def test_a_missing_or_wrong_class_is_one_line(tmp_path, model_classes, class_id, needle):
    G = conditional_texture_model(num_classes=model_classes)
    for call in (lambda: generate_texture(G, 0, 32, 32, class_id=class_id),
                 lambda: whole_texture(G, 0, 32, 32, tileable=True, class_id=class_id),
                 lambda: write_texture_png(G, 0, 32, 32, tmp_path / "t.png", class_id=class_id)):
        with pytest.raises(ConfigError, match=needle) as info:
            call()
        assert "\n" not in str(info.value)
    assert not (tmp_path / "t.png").exists()
