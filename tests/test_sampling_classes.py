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


def test_generate_passes_each_images_class_at_any_batch_size():
    torch.manual_seed(0)
    cfg = load_config(None, ["model.latent_dim=8", "model.g_width=8", "model.max_width=16", "model.num_classes=3"])
    G = build_generator(cfg.model).eval()
    with torch.no_grad():
        for m in G.modules():
            if hasattr(m, "bn"):
                m.bias.normal_(0, 0.5)
    z = latents_for_seeds(list(range(5)), 8)
    y = torch.tensor([2, 0, 1, 1, 2])
    with torch.no_grad():
        expected = to_uint8(G(z, y))
    assert torch.equal(generate(G, z, batch_size=2, labels=y, fuse=False), expected)
    assert torch.equal(generate(G, z, batch_size=5, labels=y), expected)
    assert not torch.equal(generate(G, z, labels=torch.zeros(5, dtype=torch.long)), expected)
