"""The domain classifier: training recipe, safetensors + JSON cache round trips, stacked wrapper, MNIST >= 99%."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import torch

from deconvgan.config import DataConfig
from deconvgan.data import ImageDataset, load_dataset
from deconvgan.errors import DataError
from deconvgan.metrics import classifier as clf
from deconvgan.metrics.cache import CacheWarning
from deconvgan.metrics.classifier import ClassifierRecipe, StackedDigitClassifier, load_or_train

FAST = ClassifierRecipe(epochs=1, batch_size=32, max_steps=25, width=8, feature_dim=16)




def quadrant_blobs(n: int = 400, side: int = 16, seed: int = 0) -> ImageDataset:
    """uint8 [n, 1, side, side] with one bright 4x4 square; the label is the quadrant it sits in (0..3)."""
    gen = torch.Generator().manual_seed(seed)
    images = torch.zeros(n, 1, side, side, dtype=torch.uint8)
    labels = torch.randint(0, 4, (n,), generator=gen)
    half = side // 2
    offsets = torch.randint(0, half - 4 + 1, (n, 2), generator=gen)
    for i, (label, (dy, dx)) in enumerate(zip(labels.tolist(), offsets.tolist(), strict=True)):
        y, x = (label // 2) * half + dy, (label % 2) * half + dx
        images[i, :, y:y + 4, x:x + 4] = 255
    return ImageDataset(images=images, labels=labels, name="quadrants", num_classes=4)


def test_fast_recipe_learns_and_the_cache_round_trips_exactly(tmp_path: Path, monkeypatch) -> None:
    data = quadrant_blobs()
    first = load_or_train(data, FAST, cache_dir=tmp_path, progress=False)
    assert first.accuracy(data.images, data.labels) > 0.6  # 25 steps: well above chance (0.25)
    (weights,), (meta_path,) = list(tmp_path.glob("*.safetensors")), list(tmp_path.glob("*.json"))
    meta = json.loads(meta_path.read_text())
    assert meta["recipe"]["max_steps"] == 25 and meta["num_classes"] == 4 and meta["resolution"] == 16
    assert meta["key"] in weights.name

    def no_training(*args, **kwargs):
        raise AssertionError("the cached classifier should have been loaded, not retrained")

    monkeypatch.setattr(clf, "train_classifier", no_training)
    second = load_or_train(data, FAST, cache_dir=tmp_path, progress=False)
    probe = quadrant_blobs(50, seed=1).images
    assert torch.equal(second.features(probe), first.features(probe))
    assert torch.equal(second.predict(probe), first.predict(probe))
    assert second.name == first.name and second.dim == 16


def test_outputs_shapes_and_batching(tmp_path: Path) -> None:
    model = load_or_train(quadrant_blobs(), FAST, cache_dir=tmp_path, progress=False)
    x = quadrant_blobs(37, seed=2).images
    feats, labels = model.features(x), model.predict(x)
    assert feats.shape == (37, 16) and feats.dtype == torch.float32
    assert labels.shape == (37,) and labels.dtype == torch.int64 and labels.max() < 4
    assert model.features(x[:0]).shape == (0, 16) and model.predict(x[:0]).shape == (0,)
    model.batch_size = 5  # batch-independent: eval-mode batch norm
    assert torch.allclose(model(x), feats, atol=1e-5)
    probs = model.probabilities(x)
    assert probs.shape == (37, 4) and probs.dtype == torch.float32 and model.probabilities(x[:0]).shape == (0, 4)
    assert torch.allclose(probs.sum(1), torch.ones(37)) and (probs >= 0).all()
    assert torch.equal(probs.argmax(1), labels)  # the labels are the most probable class


def test_training_is_deterministic(tmp_path: Path) -> None:
    data = quadrant_blobs()
    a = load_or_train(data, FAST, cache_dir=tmp_path / "a", progress=False)
    b = load_or_train(data, FAST, cache_dir=tmp_path / "b", progress=False)
    assert a.name == b.name  # the same key: same data, recipe and geometry
    assert torch.equal(a.features(data.images[:20]), b.features(data.images[:20]))


def test_key_covers_recipe_and_data(tmp_path: Path) -> None:
    data = quadrant_blobs()
    base = load_or_train(data, FAST, cache_dir=tmp_path, progress=False)
    other_recipe = load_or_train(data, ClassifierRecipe(**{**FAST.__dict__, "seed": 1}), cache_dir=tmp_path,
                                 progress=False)
    other_data = load_or_train(quadrant_blobs(seed=3), FAST, cache_dir=tmp_path, progress=False)
    assert len({base.name, other_recipe.name, other_data.name}) == 3
    assert len(list(tmp_path.glob("*.safetensors"))) == 3


@pytest.mark.parametrize("damage", ["weights", "json"])
def test_corrupt_cache_is_retrained_with_a_warning(tmp_path: Path, damage: str) -> None:
    data = quadrant_blobs()
    good = load_or_train(data, FAST, cache_dir=tmp_path, progress=False)
    target = next(tmp_path.glob("*.safetensors" if damage == "weights" else "*.json"))
    target.write_bytes(target.read_bytes()[:50])
    with pytest.warns(CacheWarning, match="retraining"):
        again = load_or_train(data, FAST, cache_dir=tmp_path, progress=False)
    assert torch.equal(again.features(data.images[:10]), good.features(data.images[:10]))


def test_unlabelled_data_is_refused(tmp_path: Path) -> None:
    data = quadrant_blobs()
    unlabelled = ImageDataset(images=data.images, labels=None, name="folder", num_classes=None)
    with pytest.raises(DataError, match="labelled"):
        load_or_train(unlabelled, FAST, cache_dir=tmp_path)


def test_stacked_wrapper_applies_the_digit_classifier_per_channel(tmp_path: Path) -> None:
    digits = load_or_train(quadrant_blobs(), FAST, cache_dir=tmp_path, progress=False)
    stacked = StackedDigitClassifier(digits)
    channels = [quadrant_blobs(6, seed=s).images for s in (4, 5, 6)]
    x = torch.cat(channels, dim=1)  # [6, 3, 16, 16]
    per = [digits.predict(c) for c in channels]
    assert stacked.predict(x).tolist() == (per[0] * 100 + per[1] * 10 + per[2]).tolist()
    expected = torch.cat([digits.features(c) for c in channels], dim=1)  # [6, 3 * 16]
    assert torch.allclose(stacked.features(x), expected, atol=1e-6) and stacked.dim == 48


@pytest.mark.slow
def test_mnist_recipe_reaches_99_percent(tmp_path_factory: pytest.TempPathFactory, shared_root: Path) -> None:
    """The default recipe on MNIST train, measured on MNIST test: >= 99% (a few minutes on a CPU)."""
    root = str(shared_root)
    cache = tmp_path_factory.getbasetemp() / "deconvgan-classifiers"  # shared with the mode-coverage slow test
    start = time.perf_counter()
    model = clf.domain_classifier(DataConfig(source="mnist", root=root, download=False), 28, 1,
                                  cache_dir=cache, progress=False)
    test = load_dataset(DataConfig(source="mnist", root=root, split="test", download=False), 28, 1)
    accuracy = model.accuracy(test.images, test.labels)
    print(f"\nMNIST test accuracy {accuracy:.4f}; train+eval {time.perf_counter() - start:.0f} s")
    assert accuracy >= 0.99
