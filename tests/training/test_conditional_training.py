"""Training with classes and augmentation: routing of labels, augmented inputs, exact resume, the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors import safe_open
from safetensors.torch import load_file

from deconvgan.checkpoint import load_snapshot
from deconvgan.cli import main
from deconvgan.data import ImageDataset
from deconvgan.models.conditional import ConditionalDCGANGenerator, ProjectionDiscriminator
from deconvgan.training import train
from tests.conftest import blob_images


@pytest.fixture
def labelled() -> ImageDataset:
    images = blob_images()
    labels = images.flatten(1).argmax(1) % 3  # a function of the image: equal images have equal labels
    assert set(labels.tolist()) == {0, 1, 2}
    return ImageDataset(images=images, labels=labels, name="blobs3", num_classes=3, class_names=("a", "b", "c"))


def _state(run_dir):
    return load_file(str(run_dir / "training-state.safetensors"))


def _metadata(path):
    with safe_open(str(path), framework="pt") as f:
        return f.metadata()


@pytest.mark.parametrize("overrides", [
    # ADA with a target below any r_t: p must rise at every adjustment (0.48 at steps 3 and 6)
    ("model.num_classes=3", "augment.kind=ada", "augment.ada_interval=3", "augment.ada_kimg=0.05",
     "augment.ada_target=-0.99",
     "data.hflip=true", "train.d_steps=2"),
    ("augment.kind=diffaugment", "loss.kind=wasserstein", "model.d_norm=none", "loss.r1_gamma=1.0"),
])
def test_stop_and_resume_with_classes_and_augmentation_is_bit_identical(make_config, labelled, tmp_path, overrides):
    cfg = make_config(*overrides, "train.phases=[{steps: 7}]")
    whole = train(cfg, run_dir=tmp_path / "whole", dataset=labelled)
    train(cfg, run_dir=tmp_path / "parts", dataset=labelled, until_step=4)  # mid ADA interval (3)
    if cfg.augment.kind == "ada":  # p after one adjustment, and step 4's signs of 2 D steps x 8 reals
        saved = json.loads(_metadata(tmp_path / "parts" / "training-state.safetensors")["augment"])
        assert saved["p"] == pytest.approx(0.48) and saved["count"] == 16 and abs(saved["sign_sum"]) <= 16
    second = train(cfg, resume=tmp_path / "parts", dataset=labelled)
    a, b = _state(whole.run_dir), _state(second.run_dir)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert _metadata(whole.run_dir / "training-state.safetensors").get("augment") == \
        _metadata(second.run_dir / "training-state.safetensors").get("augment")
    if cfg.augment.kind == "ada":
        p = json.loads(_metadata(whole.run_dir / "training-state.safetensors")["augment"])["p"]
        logged = [json.loads(line) for line in (whole.run_dir / "stats.jsonl").read_text().splitlines()]
        assert p == pytest.approx(0.96) and all("augment_p" in r for r in logged)


def _record_calls(kinds):
    calls = []
    hook = torch.nn.modules.module.register_module_forward_hook(
        lambda module, args, out: calls.append((type(module).__name__, [a.detach().clone() for a in args]))
        if isinstance(module, kinds) else None)
    return calls, hook


def test_classes_route_from_the_data_and_the_draws_into_g_and_d(make_config, labelled, tmp_path):
    cfg = make_config("model.num_classes=3", "train.phases=[{steps: 4}]", "run.snapshot_every_kimg=1",
                      "run.sample_every_kimg=1")
    calls, hook = _record_calls((ConditionalDCGANGenerator, ProjectionDiscriminator))
    try:
        train(cfg, run_dir=tmp_path / "r", dataset=labelled, until_step=4)
    finally:
        hook.remove()
    training = [c for c in calls if len(c[1]) == 2 and len(c[1][0]) == cfg.train.batch_size]
    reals = labelled.images.float() / 127.5 - 1
    steps = [training[4 * k:4 * k + 4] for k in range(4)]  # per step: G, D(real), D(fake), D(fake) for G
    for (g, (_, g_labels)), (_, (real, real_labels)), (_, (_, d_fake_labels)), (_, (_, g_step_labels)) in steps:
        assert g == "ConditionalDCGANGenerator"
        for image, label in zip(real, real_labels, strict=True):  # each real goes with its own label
            match = [i for i in range(len(reals)) if torch.equal(reals[i], image)]
            assert match and all(labelled.labels[i] == label for i in match)
        assert torch.equal(g_labels, d_fake_labels) and torch.equal(g_labels, g_step_labels)
    drawn = torch.cat([s[0][1][1] for s in steps])
    assert set(drawn.tolist()) == {0, 1, 2}  # drawn uniformly over the classes


def test_augmented_fakes_reach_d_in_both_steps_with_gradients(make_config, blobs, tmp_path):
    from deconvgan.models import DCGANDiscriminator, DCGANGenerator

    cfg = make_config("augment.kind=diffaugment", "train.phases=[{steps: 2}]")
    seen = []
    hook = torch.nn.modules.module.register_module_forward_hook(
        lambda module, args, out: seen.append((type(module).__name__, args[0], args[0].requires_grad if
                                               torch.is_grad_enabled() else None, out))
        if isinstance(module, (DCGANDiscriminator, DCGANGenerator)) and len(args[0]) == 8 else None)
    try:
        train(cfg, run_dir=tmp_path / "r", dataset=blobs, until_step=1)
    finally:
        hook.remove()
    (_, _, _, fake), (_, real_in, _, _), (_, fake_in_d, _, _), (_, fake_in_g, grad, _) = seen[:4]
    reals = blobs.images.float() / 127.5 - 1
    assert not any(torch.equal(real_in[0], r) for r in reals)  # reals are augmented
    assert not torch.equal(fake_in_d, fake.detach()) and not torch.equal(fake_in_g, fake_in_d)  # fresh draws
    assert grad and fake_in_g.grad_fn is not None  # G's gradient flows back through the augmentation


def _folder(root, classes=("circle", "square"), per_class=8):
    for k, name in enumerate(classes):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            pixels = np.full((16, 16), 40 * k + i, dtype=np.uint8)
            Image.fromarray(pixels, "L").save(root / name / f"{i}.png")
    return root


def test_a_folder_of_class_subfolders_trains_and_samples_by_class_name(make_config, tmp_path, capsys):
    data = _folder(tmp_path / "shapes")
    cfg = make_config("model.num_classes=2", "data.source=folder", f"data.path={data}")
    result = train(cfg, run_dir=tmp_path / "r")
    assert "class balance: circle: 8, square: 8" in (result.run_dir / "log.txt").read_text()
    assert load_snapshot(result.run_dir)[1].class_names == ("circle", "square")
    grids = {}  # six steps have given each class its own scales and shifts: the class changes the image
    for cls in ("circle", "1", "0"):
        assert main(["sample", str(result.run_dir), "--seeds", "0-3", "--class", cls, "--device", "cpu",
                     "--grid", str(tmp_path / f"{cls}.png")]) == 0
        grids[cls] = np.asarray(Image.open(tmp_path / f"{cls}.png"))
    assert np.array_equal(grids["circle"], grids["0"]) and not np.array_equal(grids["0"], grids["1"])
    assert main(["sample", str(result.run_dir), "--class", "triangle", "--device", "cpu"]) == 2
    assert "'triangle' is not a class" in capsys.readouterr().err
    assert main(["info", str(result.run_dir)]) == 0 and "classes (2): 0 circle, 1 square" in capsys.readouterr().out


def test_asking_classes_of_unlabelled_data_is_one_line(make_config, blobs, tmp_path, capsys):
    from deconvgan.errors import DataError

    with pytest.raises(DataError, match="no class labels"):
        train(make_config("model.num_classes=3"), run_dir=tmp_path / "r", dataset=blobs)
    flat = tmp_path / "flat"
    flat.mkdir()
    Image.fromarray(np.zeros((16, 16), np.uint8), "L").save(flat / "a.png")
    assert main(["train", "--data", str(flat), "--set", "model.num_classes=2", "--runs-dir", str(tmp_path / "runs"),
                 "--device", "cpu", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no subfolders" in err
