"""Export to ONNX and torch.export .pt2: outputs match PyTorch, metadata round-trips, failures write nothing."""

from __future__ import annotations

import dataclasses
import io
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from deconvgan import __version__
from deconvgan.checkpoint import save_snapshot
from deconvgan.cli import main
from deconvgan.config import ModelConfig
from deconvgan.errors import ConfigError
from deconvgan.export import ExportError, export_onnx, export_pt2, read_onnx_model_config
from deconvgan.models import build_generator

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

TINY = {"resolution": 16, "latent_dim": 8, "g_width": 8, "max_width": 16}


def make_snapshot(folder: Path, **overrides) -> tuple[Path, torch.nn.Module, ModelConfig]:
    """A tiny generator with non-trivial BatchNorm statistics, saved as ``folder/g.safetensors``."""
    torch.manual_seed(0)
    cfg = ModelConfig(**{**TINY, **overrides})
    generator = build_generator(cfg)
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for m in generator.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.copy_(0.5 * torch.randn(m.num_features, generator=gen))
                m.running_var.copy_(0.2 + 2 * torch.rand(m.num_features, generator=gen))
                m.weight.copy_(1 + 0.3 * torch.randn(m.num_features, generator=gen))
    path = folder / "g.safetensors"
    save_snapshot(path, generator, cfg, step=7, run_name="tiny")
    return path, generator.eval(), cfg


def eager(generator: torch.nn.Module, z: np.ndarray) -> np.ndarray:
    with torch.inference_mode():
        return generator(torch.from_numpy(z)).numpy()


@pytest.mark.parametrize("overrides", [
    {"upsample": "transposed"},
    {"upsample": "resize", "resize_mode": "bilinear"},
    {"upsample": "pixelshuffle", "kernel_size": 3},
    {"arch": "mlp"},
    {"arch": "dcgan", "resolution": 28, "channels": 3},
], ids=lambda o: "-".join(str(v) for v in o.values()))
def test_onnx_matches_pytorch_at_any_batch_size(tmp_path, overrides):
    snapshot, generator, cfg = make_snapshot(tmp_path, **overrides)
    report = export_onnx(snapshot, tmp_path / "g.onnx")
    assert report.path == tmp_path / "g.onnx" and report.path.is_file()
    assert report.max_abs_diff is not None and report.max_abs_diff <= 1e-4
    assert 1 in report.checked_batch_sizes and max(report.checked_batch_sizes) > 1

    model = onnx.load(str(report.path))
    assert "BatchNormalization" not in {node.op_type for node in model.graph.node}  # folded
    session = ort.InferenceSession(str(report.path), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["z"] and [o.name for o in session.get_outputs()] == ["image"]
    assert isinstance(session.get_inputs()[0].shape[0], str)  # a named, dynamic batch axis
    rng = np.random.default_rng(0)
    for n in (1, 5):
        z = rng.standard_normal((n, cfg.latent_dim), dtype=np.float32)
        (image,) = session.run(["image"], {"z": z})
        assert image.shape == (n, *cfg.image_shape)
        assert np.abs(image - eager(generator, z)).max() <= 1e-4

    # the config round-trips through the ONNX metadata and through the sidecar
    props = {p.key: p.value for p in model.metadata_props}
    assert props["deconvgan.version"] == __version__
    assert read_onnx_model_config(report.path) == cfg
    sidecar = json.loads(report.sidecar.read_text())
    assert report.sidecar == tmp_path / "g.onnx.json"
    assert sidecar["model"] == dataclasses.asdict(cfg) and sidecar["opset"] == report.opset
    assert sidecar["outputs"][0]["shape"] == ["batch", *cfg.image_shape]
    assert sidecar["snapshot"]["step"] == 7 and sidecar["check"]["max_abs_diff"] == report.max_abs_diff


def test_pt2_matches_pytorch_and_carries_the_config(tmp_path):
    snapshot, generator, cfg = make_snapshot(tmp_path, upsample="resize")
    report = export_pt2(snapshot)
    assert report.path == tmp_path / "g.pt2" and report.max_abs_diff <= 1e-4
    extra = {"deconvgan.model": "", "deconvgan.version": ""}
    module = torch.export.load(io.BytesIO(report.path.read_bytes()), extra_files=extra).module()
    assert json.loads(extra["deconvgan.model"]) == dataclasses.asdict(cfg) and extra["deconvgan.version"]
    for n in (1, 5):
        z = torch.randn(n, cfg.latent_dim)
        with torch.inference_mode():
            assert (module(z) - generator(z)).abs().max().item() <= 1e-4


@pytest.mark.parametrize("corruption", ["offset", "nan"])
def test_a_failed_check_raises_and_writes_nothing(tmp_path, monkeypatch, corruption):
    snapshot, _, _ = make_snapshot(tmp_path)
    real_run = ort.InferenceSession.run

    def broken_run(self, output_names, feed, *args, **kwargs):
        (image,) = real_run(self, output_names, feed, *args, **kwargs)
        return [image + 1e-3 if corruption == "offset" else np.full_like(image, np.nan)]

    monkeypatch.setattr(ort.InferenceSession, "run", broken_run)
    out = tmp_path / "out" / "g.onnx"
    with pytest.raises(ExportError, match=r"not written: ONNX Runtime differs from PyTorch") as info:
        export_onnx(snapshot, out)
    assert "\n" not in str(info.value) and str(out) in str(info.value)
    assert not out.exists() and not out.with_name("g.onnx.json").exists()
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())  # no temporary files either


def test_opset_choice_and_no_check(tmp_path):
    snapshot, _, _ = make_snapshot(tmp_path, arch="mlp")
    report = export_onnx(snapshot, opset=18, check=False)
    assert report.path == tmp_path / "g.onnx" and report.opset == 18 and report.max_abs_diff is None
    assert onnx.load(str(report.path)).opset_import[0].version == 18
    assert json.loads(report.sidecar.read_text())["check"] is None
    with pytest.raises(ConfigError, match="--opset 12"):
        export_onnx(snapshot, opset=12)
    with pytest.raises(ConfigError, match="is the snapshot itself"):
        export_onnx(snapshot, snapshot)


def test_cli_export(tmp_path, capsys):
    snapshot, _, _ = make_snapshot(tmp_path)
    out = tmp_path / "exported" / "model.onnx"
    assert main(["export", str(snapshot), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert str(out) in printed and "max abs difference vs PyTorch" in printed
    assert out.is_file() and out.with_name("model.onnx.json").is_file()
    assert main(["export", str(tmp_path), "--format", "pt2"]) == 2  # a folder that is not a run directory
    assert main(["export", str(snapshot), "--format", "pt2", "--opset", "18"]) == 2


def test_cli_export_of_a_missing_snapshot_is_one_error_line(tmp_path, capsys):
    missing = tmp_path / "nope.safetensors"
    assert main(["export", str(missing)]) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and str(missing) in lines[0]
    assert captured.out == "" and not (tmp_path / "nope.onnx").exists()


@pytest.mark.parametrize("fmt", ["onnx", "pt2"])
def test_conditional_generator_takes_the_class_as_a_second_input(tmp_path, fmt):
    torch.manual_seed(0)
    cfg = ModelConfig(**TINY, num_classes=4)
    generator = build_generator(cfg).eval()
    with torch.no_grad():  # at initialisation every class has the same scale and shift: make them differ
        for param in generator.parameters():
            param.add_(0.2 * torch.randn_like(param))
    path = tmp_path / "c.safetensors"
    save_snapshot(path, generator, cfg, class_names=("ant", "bee", "cat", "dog"))
    report = (export_onnx if fmt == "onnx" else export_pt2)(path)
    assert report.max_abs_diff is not None and report.max_abs_diff <= 1e-4
    sidecar = json.loads(report.sidecar.read_text())
    assert sidecar["inputs"][1] == {"name": "class", "dtype": "int64", "shape": ["batch"],
                                    "classes": ["ant", "bee", "cat", "dog"]}
    z = torch.randn(6, cfg.latent_dim)
    labels = torch.tensor([0, 1, 2, 3, 3, 0])
    with torch.inference_mode():
        expected = generator(z, labels)
        other = generator(z, (labels + 1) % 4)
    if fmt == "onnx":
        session = ort.InferenceSession(str(report.path), providers=["CPUExecutionProvider"])
        assert [i.name for i in session.get_inputs()] == ["z", "class"]
        got = torch.from_numpy(session.run(["image"], {"z": z.numpy(), "class": labels.numpy()})[0])
        props = {p.key: p.value for p in onnx.load(str(report.path)).metadata_props}
        assert json.loads(props["deconvgan.classes"]) == ["ant", "bee", "cat", "dog"]
    else:
        with torch.inference_mode():
            got = torch.export.load(io.BytesIO(report.path.read_bytes())).module()(z, labels)
    assert (got - expected).abs().max().item() <= 1e-4
    assert (got - other).abs().max().item() > 1e-2  # the class input is used, not baked in at trace time
