"""Choosing classes when sampling a conditional generator: --class parsing, per-seed labels, generate()."""

from __future__ import annotations

import pytest
import torch

from deconvgan.configio import load_config
from deconvgan.errors import ConfigError
from deconvgan.images import to_uint8
from deconvgan.models import build_generator
from deconvgan.sampling import generate, labels_for_seeds, latents_for_seeds, parse_class


def test_parse_class_takes_ids_names_and_all():
    names = ("cat", "dog", "7")
    assert parse_class("dog", names) == 1 and parse_class("0", names) == 0 and parse_class("all", names) is None
    assert parse_class("7", names) == 2  # a name wins over an id of the same spelling
    for bad in ("3", "cow", "-1"):
        with pytest.raises(ConfigError, match="not a class of this snapshot"):
            parse_class(bad, names)
    with pytest.raises(ConfigError, match="not class-conditional"):
        parse_class("1", ())


def test_a_seeds_default_class_depends_on_the_seed_alone():
    assert labels_for_seeds([0, 4, 5, 9], 3).tolist() == [0, 1, 2, 0]
    assert labels_for_seeds([5], 3).tolist() == labels_for_seeds([1, 5, 8], 3)[1:2].tolist()
    assert labels_for_seeds([0, 4], 3, class_id=2).tolist() == [2, 2]


def conditional_generator(scale_std: float = 0.0):
    """A tiny 3-class generator whose classes differ (random per-class shifts, and scales if asked), eval mode."""
    torch.manual_seed(0)
    cfg = load_config(None, ["model.latent_dim=8", "model.g_width=8", "model.max_width=16", "model.num_classes=3"])
    G = build_generator(cfg.model).eval()
    with torch.no_grad():
        for m in G.modules():
            if hasattr(m, "bn"):
                m.bias.normal_(0, 0.5)
                if scale_std:
                    m.weight.normal_(1, scale_std)
    return G, cfg


def test_generate_passes_each_images_class_at_any_batch_size():
    G, _ = conditional_generator()
    z = latents_for_seeds(list(range(5)), 8)
    y = torch.tensor([2, 0, 1, 1, 2])
    with torch.no_grad():
        expected = to_uint8(G(z, y))
    assert torch.equal(generate(G, z, batch_size=2, labels=y, fuse=False), expected)
    assert torch.equal(generate(G, z, batch_size=5, labels=y), expected)
    assert not torch.equal(generate(G, z, labels=torch.zeros(5, dtype=torch.long)), expected)


def test_class_path_blends_one_hot_rows_and_ends_on_each_class():
    from deconvgan.sampling import class_path

    path = class_path([2, 0, 1], 3, 4)
    assert path.shape == (9, 3) and torch.allclose(path.sum(1), torch.ones(9))
    assert path[0].tolist() == [0, 0, 1] and path[4].tolist() == [1, 0, 0] and path[8].tolist() == [0, 1, 0]
    assert path[2].tolist() == [0.5, 0, 0.5]
    with pytest.raises(ConfigError, match="at least two classes"):
        class_path([1], 3, 4)


def test_soft_class_weights_equal_hard_labels_at_the_ends_and_blend_between():
    G, _ = conditional_generator(scale_std=0.3)
    z = latents_for_seeds([4], 8).expand(3, -1)
    hard = generate(G, z, labels=torch.tensor([0, 1, 2]), fuse=False)
    soft = generate(G, z, labels=torch.eye(3))  # one-hot weights, fused copy: the same images
    assert (hard.int() - soft.int()).abs().max() <= 1
    half = generate(G, z[:1], labels=torch.tensor([[0.5, 0.5, 0.0]]), fuse=False)
    assert not torch.equal(half[0], hard[0]) and not torch.equal(half[0], hard[1])


def test_cli_interpolates_between_classes_at_one_seed(tmp_path, capsys):
    from deconvgan.checkpoint import save_snapshot
    from deconvgan.cli import main

    G, cfg = conditional_generator()
    save_snapshot(tmp_path / "g.safetensors", G, cfg.model, class_names=("cat", "dog", "owl"))
    out = tmp_path / "between"
    assert main(["interpolate", str(tmp_path / "g.safetensors"), "--seeds", "5", "--class", "cat,owl",
                 "--frames", "3", "--out", str(out), "--scale", "1"]) == 0
    from PIL import Image

    with Image.open(out.with_suffix(".png")) as strip:
        assert strip.width == 4 * 16 + 5 * 2  # 4 frames (cat, 2 blends, owl) with the grid's padding
    assert main(["interpolate", str(tmp_path / "g.safetensors"), "--seeds", "1,2", "--class", "cat,owl"]) == 2
    assert "between classes the seed stays fixed" in capsys.readouterr().err
