"""Class accuracy and per-class Fréchet distance of conditional generators: known values, routing, refusals."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from deconvgan.checkpoint import save_snapshot
from deconvgan.config import DataConfig, ModelConfig
from deconvgan.errors import ConfigError
from deconvgan.metrics.evaluate import EvalContext, evaluate
from deconvgan.models import build_generator

from .conftest import reference_frechet

TINY = {"resolution": 16, "latent_dim": 8, "g_width": 8, "d_width": 8, "max_width": 16}
DIGITS = DataConfig(source="digits", split="train")


class StubClassifier:
    """Predicts the class written in pixel (0, 0) of channel 0; features: 4x4 average-pooled pixels."""

    name, version = "stub-classifier", 1

    def predict(self, images: torch.Tensor) -> torch.Tensor:
        return images[:, 0, 0, 0].long()

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.adaptive_avg_pool2d(images.float(), 4).flatten(1)


def _context(fake: torch.Tensor, fake_labels: torch.Tensor, real: torch.Tensor, real_labels: torch.Tensor,
             tmp_path: Path) -> EvalContext:
    ctx = EvalContext(real=real, fake=fake, data_cfg=DIGITS, real_name="stub-digits",
                      model=ModelConfig(**TINY, num_classes=3), num_generated=len(fake), cache_dir=tmp_path,
                      progress=False, fake_labels=fake_labels, real_labels=real_labels, class_names=("a", "b", "c"))
    ctx._extractors["classifier"] = StubClassifier()
    return ctx


def _images(classes: list[int], seed: int) -> torch.Tensor:
    images = torch.randint(0, 256, (len(classes), 1, 16, 16), generator=torch.Generator().manual_seed(seed),
                           dtype=torch.uint8)
    images[:, 0, 0, 0] = torch.tensor(classes, dtype=torch.uint8)
    return images


def test_class_accuracy_counts_images_in_their_drawn_class(tmp_path: Path) -> None:
    from deconvgan.metrics.classes import metric_class_accuracy

    drawn = torch.arange(30) % 3
    shown = drawn.clone()
    shown[:7] = (shown[:7] + 1) % 3  # 7 of 30 images look like the next class
    ctx = _context(_images(shown.tolist(), 0), drawn, _images([0, 1, 2] * 4, 1), torch.arange(12) % 3, tmp_path)
    assert metric_class_accuracy(ctx) == {"class-accuracy": pytest.approx(23 / 30, abs=1e-12)}


def test_class_fd_is_the_frechet_distance_of_each_class(tmp_path: Path) -> None:
    from deconvgan.metrics.classes import metric_class_fd

    fake_labels, real_labels = torch.arange(60) % 3, torch.arange(45) % 3
    fake, real = _images(fake_labels.tolist(), 2), _images(real_labels.tolist(), 3)
    fake[fake_labels == 2] //= 2  # class c is darker than its real images: its distance stands out
    results = metric_class_fd(_context(fake, fake_labels, real, real_labels, tmp_path))
    stub = StubClassifier()
    expected = {name: reference_frechet(stub(real[real_labels == k]), stub(fake[fake_labels == k]))
                for k, name in enumerate("abc")}
    for name, value in expected.items():
        assert results[f"class-fd/{name}"] == pytest.approx(value, rel=1e-6)
    assert results["class-fd-max"] == pytest.approx(expected["c"], rel=1e-6) and expected["c"] > 3 * expected["a"]
    assert results["class-fd-mean"] == pytest.approx(sum(expected.values()) / 3, rel=1e-6)


def test_class_fd_refuses_a_class_without_images(tmp_path: Path) -> None:
    from deconvgan.metrics.classes import metric_class_fd

    ctx = _context(_images([0, 1, 0, 1], 0), torch.tensor([0, 1, 0, 1]), _images([0, 1, 2] * 3, 1),
                   torch.arange(9) % 3, tmp_path)
    with pytest.raises(ConfigError, match="class 'c' has 3 real and 0 generated images"):
        metric_class_fd(ctx)


def _snapshot(path: Path, num_classes: int) -> Path:
    cfg = ModelConfig(**TINY, num_classes=num_classes)
    torch.manual_seed(0)
    names = tuple(str(k) for k in range(num_classes))
    save_snapshot(path, build_generator(cfg), cfg, dataset="digits", class_names=names)
    return path


def test_evaluate_draws_each_seed_in_its_class(tmp_path: Path) -> None:
    snapshot = _snapshot(tmp_path / "cond.safetensors", 10)
    results = evaluate(snapshot, DIGITS, num_generated=40, num_real=200, device="cpu", progress=False,
                       cache_dir=tmp_path / "cache", metrics=["class-accuracy", "class-fd"])
    assert set(results) == {"class-accuracy", "class-fd-mean", "class-fd-max", *(f"class-fd/{k}" for k in range(10))}
    # Recomputed by hand: seed s drawn in class s mod 10, judged by the (now cached) digits classifier.
    from deconvgan.checkpoint import load_snapshot
    from deconvgan.metrics.classifier import domain_classifier
    from deconvgan.sampling import generate, latents_for_seeds

    generator, _ = load_snapshot(snapshot)
    drawn = torch.arange(40) % 10
    fake = generate(generator, latents_for_seeds(list(range(40)), 8), labels=drawn)
    classifier = domain_classifier(DIGITS, 16, 1, cache_dir=tmp_path / "cache" / "classifiers", progress=False)
    assert results["class-accuracy"] == pytest.approx(float((classifier.predict(fake) == drawn).double().mean()))
    assert results["class-accuracy"] <= 0.4  # an untrained generator draws no class: about chance


def test_class_metrics_refuse_unconditional_snapshots(tmp_path: Path) -> None:
    snapshot = _snapshot(tmp_path / "plain.safetensors", 0)
    with pytest.raises(ConfigError, match="class-accuracy, class-fd are for class-conditional generators"):
        evaluate(snapshot, DIGITS, metrics=["class-fd"], num_generated=8, num_real=8, progress=False)

