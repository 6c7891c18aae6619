"""Texture models export with dynamic spatial axes: any field size through ONNX Runtime and .pt2."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from deconvgan.checkpoint import save_snapshot
from deconvgan.config import ModelConfig
from deconvgan.export import export_onnx, export_pt2
from deconvgan.latents import draw_latents, seed_field
from deconvgan.models import build_generator

ort = pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")


def texture_snapshot(folder, **overrides):
    cfg = ModelConfig(**(dict(arch="spatial", resolution=32, channels=3, levels=3, g_width=8, local_channels=4,
                              global_channels=2) | overrides))
    torch.manual_seed(0)
    generator = build_generator(cfg)
    with torch.no_grad():
        for m in generator.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.3, 0.3)
                m.running_var.uniform_(0.5, 2.0)
    path = folder / "t.safetensors"
    save_snapshot(path, generator, cfg, step=3, run_name="tex")
    return path, generator.eval(), cfg


@pytest.mark.parametrize("overrides", [{"tileable": True}, {"periodic_channels": 2}, {"upsample": "resize",
                                                                                        "tileable": True}],
                         ids=["tileable", "periodic", "resize-tileable"])
def test_onnx_takes_fields_of_any_size(tmp_path, overrides):
    snapshot, generator, cfg = texture_snapshot(tmp_path, **overrides)
    report = export_onnx(snapshot, tmp_path / "t.onnx")
    assert report.max_abs_diff <= 1e-4
    session = ort.InferenceSession(str(report.path), providers=["CPUExecutionProvider"])
    assert [isinstance(d, str) for d in session.get_inputs()[0].shape] == [True, False, True, True]
    for field in (draw_latents(cfg, 2, torch.Generator().manual_seed(1), field_size=(5, 3)),
                  seed_field(cfg, 4, -2, 7, 9, 11)):  # a window of an unbounded texture, as an engine would ask
        (image,) = session.run(["image"], {"z": field.numpy()})
        with torch.inference_mode():
            expected = generator(field).numpy()
        assert image.shape == expected.shape == (field.shape[0], 3, field.shape[2] * 8, field.shape[3] * 8)
        assert np.abs(image - expected).max() <= 1e-4
    sidecar = json.loads(report.sidecar.read_text())
    assert sidecar["inputs"][0]["shape"] == ["batch", generator.latent_dim, "height", "width"]
    assert sidecar["outputs"][0]["shape"] == ["batch", 3, "8*height", "8*width"]


def test_pt2_takes_fields_of_any_size(tmp_path):
    snapshot, generator, cfg = texture_snapshot(tmp_path, tileable=True)
    report = export_pt2(snapshot)
    module = torch.export.load(str(report.path)).module()
    field = draw_latents(cfg, 3, torch.Generator().manual_seed(2), field_size=(4, 7))
    with torch.inference_mode():
        assert (module(field) - generator(field)).abs().max().item() <= 1e-4
