"""Class-conditional texture models through the training loop: labelled crops, exact resume, snapshots."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file

from deconvgan.checkpoint import load_snapshot
from deconvgan.data.crops import TextureSources
from deconvgan.errors import DataError
from deconvgan.models import fuse_for_inference
from deconvgan.models.conditional import ConditionalSpatialGenerator
from deconvgan.tiles import generate_texture, whole_texture
from deconvgan.training import train

TEXTURE = ("model.arch=spatial", "model.channels=3", "model.resolution=16", "model.levels=2", "model.g_width=8",
           "model.d_width=8", "model.local_channels=4", "model.global_channels=2", "data.source=folder",
           "data.path=unused", "data.hflip=true", "model.num_classes=2")


@pytest.fixture
def two_materials() -> TextureSources:
    """Class 'stripes' (two sources) and class 'dots' (one): structured, cheap."""
    y, x = torch.meshgrid(torch.arange(40), torch.arange(48), indexing="ij")
    stripes = torch.stack([(y + x) % 8 * 32, (y - x) % 6 * 40, (2 * y) % 10 * 25]).to(torch.uint8)
    dots = (((y % 6) < 2) & ((x % 6) < 2)).to(torch.uint8).mul(255).expand(3, -1, -1).contiguous()
    return TextureSources((stripes, dots, stripes[:, :24, :30].contiguous()), "materials",
                          labels=torch.tensor([0, 1, 0]), num_classes=2, class_names=("stripes", "dots"))


def _state(run_dir):
    return load_file(str(run_dir / "training-state.safetensors"))


@pytest.mark.parametrize("overrides", [
    ("model.tileable=true", "train.d_steps=2"),
    ("loss.kind=hinge", "model.d_norm=spectral", "augment.kind=diffaugment"),
])
def test_stopped_and_resumed_equals_uninterrupted(make_config, two_materials, tmp_path, overrides):
    cfg = make_config(*TEXTURE, *overrides)
    whole = train(cfg, run_dir=tmp_path / "whole", dataset=two_materials)
    train(cfg, run_dir=tmp_path / "parts", dataset=two_materials, until_step=3)
    resumed = train(cfg, resume=tmp_path / "parts", dataset=two_materials)
    assert resumed.step == whole.step == cfg.train.total_steps
    a, b = _state(tmp_path / "whole"), _state(tmp_path / "parts")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert any(k.endswith("embed.weight") or "embed.parametrizations" in k for k in a)  # D's projection is trained


def test_the_snapshot_draws_each_class_tile_by_tile(make_config, two_materials, tmp_path):
    result = train(make_config(*TEXTURE, "model.tileable=true"), run_dir=tmp_path / "r", dataset=two_materials)
    log = (result.run_dir / "log.txt").read_text()
    assert "class balance: stripes: 2, dots: 1" in log and "each of 2 classes equally often" in log
    generator, info = load_snapshot(result.snapshot)
    assert isinstance(generator, ConditionalSpatialGenerator) and info.class_names == ("stripes", "dots")
    G = fuse_for_inference(generator)
    for k in (0, 1):
        tiled = generate_texture(G, 3, 32, 48, tileable=True, tile=8, class_id=k)
        torch.testing.assert_close(tiled, whole_texture(G, 3, 32, 48, tileable=True, class_id=k), atol=1e-5, rtol=0)


def test_a_class_without_sources_is_refused(make_config, two_materials, tmp_path):
    only_stripes = TextureSources(two_materials.images[:1], "materials", labels=torch.tensor([0]), num_classes=2,
                                  class_names=("stripes", "dots"))
    with pytest.raises(DataError, match="class 'dots' has no images"):
        train(make_config(*TEXTURE), run_dir=tmp_path / "r", dataset=only_stripes)
