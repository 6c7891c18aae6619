"""Texture models through the unchanged training loop: crops, every loss, EMA, exact resume, snapshots."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file

from deconvgan.checkpoint import load_snapshot
from deconvgan.data.crops import TextureSources
from deconvgan.models import fuse_for_inference
from deconvgan.tiles import generate_texture, whole_texture
from deconvgan.training import train

TEXTURE = ("model.arch=spatial", "model.channels=3", "model.resolution=16", "model.levels=2", "model.g_width=8",
           "model.d_width=8", "model.local_channels=4", "model.global_channels=2", "data.source=texture-sample",
           "data.hflip=true", "data.rot90=true")


@pytest.fixture
def stripes() -> TextureSources:
    """One 40x48 source: diagonal colour stripes (a texture with structure, cheap)."""
    y, x = torch.meshgrid(torch.arange(40), torch.arange(48), indexing="ij")
    image = torch.stack([(y + x) % 8 * 32, (y - x) % 6 * 40, (2 * y) % 10 * 25]).to(torch.uint8)
    return TextureSources((image,), "stripes")


def _bit_identical(a, b):
    a, b = load_file(str(a / "training-state.safetensors")), load_file(str(b / "training-state.safetensors"))
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("overrides", [
    ("model.tileable=true",),
    ("model.periodic_channels=2", "loss.kind=hinge", "loss.r1_gamma=1.0"),
    ("loss.kind=wasserstein", "model.d_norm=spectral", "train.d_steps=2", "model.upsample=resize"),
    ("model.tileable=true", "train.phases=[{steps: 4}, {name: g-only, steps: 3, train_d: false}]"),
])
def test_stopped_and_resumed_equals_uninterrupted(make_config, stripes, tmp_path, overrides):
    cfg = make_config(*TEXTURE, *overrides)
    whole = train(cfg, run_dir=tmp_path / "whole", dataset=stripes)
    train(cfg, run_dir=tmp_path / "parts", dataset=stripes, until_step=3)
    resumed = train(cfg, resume=tmp_path / "parts", dataset=stripes)
    assert resumed.step == whole.step == cfg.train.total_steps
    _bit_identical(tmp_path / "whole", tmp_path / "parts")


def test_snapshot_rebuilds_the_texture_generator(make_config, stripes, tmp_path):
    result = train(make_config(*TEXTURE, "model.tileable=true"), run_dir=tmp_path / "r", dataset=stripes)
    generator, info = load_snapshot(result.snapshot)
    assert info.model.arch == "spatial" and info.dataset == "stripes"
    G = fuse_for_inference(generator)
    tiled = generate_texture(G, 3, 32, 48, tileable=True, tile=8)
    torch.testing.assert_close(tiled, whole_texture(G, 3, 32, 48, tileable=True), atol=1e-5, rtol=1e-5)
    grids = sorted((result.run_dir / "samples").glob("grid-*.png"))
    assert grids and grids[-1].stat().st_size > 0


def test_the_loop_trains_on_crops(make_config, stripes, tmp_path):
    """D learns to tell the stripes from the untrained generator's output within a few steps."""
    cfg = make_config(*TEXTURE, "train.phases=[{steps: 12}]", "run.log_every_kimg=0.096")
    result = train(cfg, run_dir=tmp_path / "r", dataset=stripes)
    assert result.last_stats["d_real"] > result.last_stats["d_fake"]
