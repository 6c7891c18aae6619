"""One texture model of several materials from the command line: train on class subfolders, draw a chosen class."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from deconvgan.checkpoint import load_snapshot
from deconvgan.cli import main
from deconvgan.config import DataConfig
from deconvgan.metrics import texture_eval
from deconvgan.metrics.seams import seam_score

TINY = ["--set", "model.g_width=8", "--set", "model.d_width=8", "--set", "model.resolution=64",
        "--set", "train.batch_size=4", "--set", "run.grid_size=4", "--no-progress", "--set", "run.tensorboard=false"]


def _materials(root):
    """materials/dots/*.png and materials/stripes/*.png, 80x80 RGB."""
    y, x = np.mgrid[:80, :80]
    dots = np.where(((y % 8) < 3) & ((x % 8) < 3), 230, 30).astype(np.uint8)
    stripes = ((x + y) % 10 * 25).astype(np.uint8)
    for name, gray in (("dots", dots), ("stripes", stripes)):
        (root / name).mkdir(parents=True)
        for i, tint in enumerate((0.6, 1.0)):
            rgb = np.stack([gray, (gray * tint).astype(np.uint8), 255 - gray], axis=2)
            Image.fromarray(rgb).save(root / name / f"{i}.png")
    return root


@pytest.fixture(scope="module")
def material_run(tmp_path_factory):
    base = tmp_path_factory.mktemp("materials")
    data = _materials(base / "materials")
    runs = base / "runs"
    assert main(["train", "texture", "--data", str(data), "--set", "model.num_classes=2", "--kimg", "0.012",
                 "--runs-dir", str(runs), *TINY]) == 0
    return runs / "00000-materials-spatial", data


def test_texture_draws_the_chosen_class_seamlessly(material_run, capsys):
    run, _ = material_run
    pixels = {}
    for chosen in ("dots", "1"):  # by name or id
        assert main(["texture", str(run), "--class", chosen, "--size", "128x64", "--seed", "3", "--no-progress"]) == 0
        assert "128x64 tileable texture of class" in capsys.readouterr().out
    for name in ("dots", "stripes"):
        with Image.open(run / "textures" / f"{name}-seed0003-128x64.png") as image:
            pixels[name] = np.asarray(image).astype(np.int16)
        assert pixels[name].shape == (64, 128, 3)
        assert seam_score(torch.from_numpy(pixels[name].astype(np.uint8)).permute(2, 0, 1)) < 1.05
    assert np.abs(pixels["dots"] - pixels["stripes"]).max() > 0  # the same seed, another material


@pytest.mark.parametrize(("argv", "message"), [
    ([], "is a class-conditional texture model: choose one class with --class NAME or ID 0..1 (dots, stripes)"),
    (["--class", "all"], "choose one class with --class"),
    (["--class", "bark"], "--class 'bark' is not a class of this snapshot"),
])
def test_a_missing_or_unknown_class_is_one_line(material_run, argv, message, capsys):
    run, _ = material_run
    assert main(["texture", str(run), "--size", "64", "--no-progress", *argv]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err


def test_sample_and_info_know_the_classes(material_run, tmp_path, capsys):
    run, _ = material_run
    assert main(["sample", str(run), "--seeds", "0-2", "--class", "all", "--grid", str(tmp_path / "g.png")]) == 0
    assert "(one row per class)" in capsys.readouterr().out
    assert main(["sample", str(run), "--seeds", "0-1", "--class", "stripes", "--out", str(tmp_path / "s")]) == 0
    assert sorted(p.name for p in (tmp_path / "s").iterdir()) == ["seed000000.png", "seed000001.png"]
    assert main(["info", str(run)]) == 0
    assert "classes (2): 0 dots, 1 stripes" in capsys.readouterr().out


def test_onnx_export_takes_the_class_as_a_second_input(material_run, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    run, _ = material_run
    assert main(["export", str(run), "--out", str(tmp_path / "m.onnx")]) == 0
    sidecar = json.loads((tmp_path / "m.onnx.json").read_text())
    assert [i["name"] for i in sidecar["inputs"]] == ["z", "class"]
    assert sidecar["inputs"][1]["classes"] == ["dots", "stripes"]
    generator, _ = load_snapshot(run)
    session = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    field = torch.randn(2, generator.latent_dim, 3, 5)
    for labels in (torch.tensor([0, 1]), torch.tensor([1, 1])):
        (image,) = session.run(["image"], {"z": field.numpy(), "class": labels.numpy()})
        with torch.inference_mode():
            assert np.abs(image - generator(field, labels).numpy()).max() <= 1e-4


def test_texture_metrics_per_class_and_their_mean(material_run, monkeypatch):
    run, data = material_run
    monkeypatch.setattr(texture_eval, "SEAM_TILES", 2)
    generator, info = load_snapshot(run)

    def pooled(images):  # a cheap feature extractor: 4x4 average pooling, [N, 3, 16, 16]
        return torch.nn.functional.avg_pool2d(images.float(), 4)

    results = texture_eval.evaluate_texture(generator, info.model, DataConfig(source="folder", path=str(data)),
                                            num_generated=3, num_real=3, extractor=pooled)
    for key in ("sifid", "diversity", "diversity-real", "seam", "seam-unbounded", "spectral"):
        per_class = [results[f"{key}/dots"], results[f"{key}/stripes"]]
        assert results[key] == pytest.approx(sum(per_class) / 2), key
    assert results["diversity-real/dots"] != results["diversity-real/stripes"]  # each class against its own crops
