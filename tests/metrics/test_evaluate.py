"""``evaluate`` and ``deconvgan evaluate``: a tiny snapshot against the embedded digits, the metric registry."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from deconvgan.checkpoint import load_snapshot, save_snapshot
from deconvgan.cli import main
from deconvgan.config import Config, DataConfig, ModelConfig
from deconvgan.configio import config_to_yaml
from deconvgan.data import load_dataset
from deconvgan.errors import ConfigError
from deconvgan.metrics import classifier as clf
from deconvgan.metrics import inception
from deconvgan.metrics.classifier import StackedDigitClassifier
from deconvgan.metrics.evaluate import METRICS, EvalContext, eval_data_config, evaluate, parse_metrics
from deconvgan.metrics.spectral import spectral_report
from deconvgan.models import build_generator
from deconvgan.sampling import generate, latents_for_seeds

from .conftest import KID_BUFFER_WARNING, reference_frechet, reference_prdc, torchmetrics_kid

TINY = {"resolution": 16, "latent_dim": 8, "g_width": 8, "d_width": 8, "max_width": 16}
DIGITS = DataConfig(source="digits", split="train")  # the embedded set has a single split
SMALL = {"num_generated": 48, "num_real": 64, "device": "cpu", "progress": False}


def make_snapshot(path: Path, dataset: str = "digits", **model: object) -> Path:
    cfg = ModelConfig(**{**TINY, **model})
    torch.manual_seed(0)
    save_snapshot(path, build_generator(cfg), cfg, dataset=dataset)
    return path


@pytest.fixture
def snapshot(tmp_path: Path) -> Path:
    return make_snapshot(tmp_path / "snap.safetensors")


class StubInception:
    """Stands in for the (slow) Inception network: 4x4 average-pooled pixels as 16-d features."""

    name, version, dim = "stub-inception", 1, 16

    def __init__(self, *args: object, **kwargs: object) -> None:
        pass

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.adaptive_avg_pool2d(images.float().mean(1, keepdim=True), 4).flatten(1)


def real_and_fake(snapshot: Path) -> tuple[torch.Tensor, torch.Tensor]:
    """What evaluate must compare with SMALL: the first 64 digits (unflipped) and the images of seeds 0..47."""
    real = load_dataset(DataConfig(source="digits", max_images=SMALL["num_real"]), 16, 1).images
    generator, info = load_snapshot(snapshot)
    fake = generate(generator, latents_for_seeds(list(range(SMALL["num_generated"])), info.model.latent_dim))
    return real, fake


def other_digits_context(real: torch.Tensor, extractor: str, cache_dir: Path) -> EvalContext:
    """The next 48 digits (64..111) as the generated side against ``real``: where PRDC's values say something
    (against an untrained generator's images every one is 0)."""
    others = load_dataset(DataConfig(source="digits", max_images=112), 16, 1).images[64:]
    return EvalContext(real=real, fake=others, data_cfg=DIGITS, real_name="digits", model=ModelConfig(**TINY),
                       num_generated=48, extractor=extractor, cache_dir=cache_dir, progress=False)


def test_default_metrics_on_digits(snapshot: Path, tmp_path: Path) -> None:
    results = evaluate(snapshot, DIGITS, cache_dir=tmp_path / "cache", **SMALL)
    assert set(results) == {"fd-classifier", "precision", "recall", "density", "coverage",
                            "spectral-distance", "periodic-ratio", "periodic-ratio-real"}
    assert list((tmp_path / "cache" / "classifiers").glob("*.safetensors"))
    assert list((tmp_path / "cache" / "features").glob("*.safetensors"))
    # The values, recomputed independently from the same images and the (now cached) classifier's
    # features: Fréchet distance and PRDC (k=3 / k=5) by numpy brute force, the spectra on the images.
    real, fake = real_and_fake(snapshot)
    classifier = clf.domain_classifier(DIGITS, 16, 1, cache_dir=tmp_path / "cache" / "classifiers", progress=False)
    real_f, fake_f = classifier(real), classifier(fake)
    assert results["fd-classifier"] == pytest.approx(reference_frechet(real_f, fake_f), rel=1e-7)
    assert {k: results[k] for k in ("precision", "recall", "density", "coverage")} == reference_prdc(real_f, fake_f)
    # PRDC is 0 above; with other digits as the generated side, through the registry and the cached classifier:
    ctx = other_digits_context(real, "classifier", tmp_path / "cache")
    expected = reference_prdc(real_f, classifier(ctx.fake))
    assert METRICS["prdc"](ctx) == expected
    assert 0 < expected["precision"] < 1 and 0 < expected["coverage"] < 1 and expected["density"] > 0
    assert METRICS["fd-classifier"](ctx)["fd-classifier"] == pytest.approx(
        reference_frechet(real_f, classifier(ctx.fake)), rel=1e-7)
    spectra = spectral_report(real, fake)
    assert (results["spectral-distance"], results["periodic-ratio"], results["periodic-ratio-real"]) == (
        spectra.distance, spectra.fake_periodic_ratio, spectra.real_periodic_ratio)
    again = evaluate(snapshot, DIGITS, cache_dir=tmp_path / "cache", **SMALL)  # cached real side
    assert again == results


@pytest.mark.filterwarnings(KID_BUFFER_WARNING)
def test_inception_metrics_with_a_stub_network(snapshot: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(inception, "InceptionFeatures", StubInception)
    results = evaluate(snapshot, DIGITS, metrics=("fid", "kid", "prdc"), extractor="inception",
                       cache_dir=tmp_path, **SMALL)
    assert set(results) == {"fid", "kid", "kid-std", "precision", "recall", "density", "coverage"}
    # Independently from the stub's features of the same images: numpy FID, torchmetrics' KID on the
    # same 100 subsets of 48 (seed 0), brute-force PRDC in the Inception space (extractor="inception").
    real, fake = real_and_fake(snapshot)
    real_f, fake_f = StubInception()(real), StubInception()(fake)
    assert results["fid"] == pytest.approx(reference_frechet(real_f, fake_f), rel=1e-7)
    kid = torchmetrics_kid(real_f.double(), fake_f.double(), subsets=100, subset_size=48, seed=0)
    assert (results["kid"], results["kid-std"]) == pytest.approx(kid, rel=1e-9)
    assert {k: results[k] for k in ("precision", "recall", "density", "coverage")} == reference_prdc(real_f, fake_f)
    # PRDC is 0 above; in the Inception space (extractor="inception") with other digits as the generated side:
    ctx = other_digits_context(real, "inception", tmp_path)
    expected = reference_prdc(real_f, StubInception()(ctx.fake))
    assert METRICS["prdc"](ctx) == expected and 0 < expected["precision"] < 1 and 0 < expected["coverage"] < 1


def test_metrics_of_identical_sets(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setattr(inception, "InceptionFeatures", StubInception)
    gen = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (40, 1, 16, 16), generator=gen, dtype=torch.uint8)
    ctx = EvalContext(real=images, fake=images, data_cfg=DIGITS, real_name="same", model=ModelConfig(**TINY),
                      num_generated=40, extractor="inception", cache_dir=tmp_path, progress=False)
    assert METRICS["fid"](ctx)["fid"] == pytest.approx(0.0, abs=1e-6)
    prdc = METRICS["prdc"](ctx)
    assert prdc["precision"] == prdc["recall"] == prdc["coverage"] == 1.0
    assert METRICS["spectral"](ctx)["spectral-distance"] == pytest.approx(0.0, abs=1e-12)


def test_bad_requests_are_config_errors(snapshot: Path) -> None:
    with pytest.raises(ConfigError, match="Stacked MNIST only"):
        evaluate(snapshot, DIGITS, metrics=("mode-coverage",), **SMALL)
    with pytest.raises(ConfigError, match="not one of"):
        evaluate(snapshot, DIGITS, metrics=("inception-score",), **SMALL)
    with pytest.raises(ConfigError, match="extractor"):
        evaluate(snapshot, DIGITS, extractor="vgg", **SMALL)
    with pytest.raises(ConfigError, match="num_real"):
        evaluate(snapshot, DIGITS, **{**SMALL, "num_real": 1})
    assert parse_metrics("fid, prdc,fid") == ("fid", "prdc")


def test_mode_coverage_on_stacked_mnist(tmp_path: Path, monkeypatch, shared_root: Path) -> None:
    seen = []

    class CountingDigits:
        """Labels the k-th single-channel image it is given k mod 7, and keeps what it was given."""

        def predict(self, images: torch.Tensor) -> torch.Tensor:
            seen.append(images)
            return torch.arange(images.shape[0]) % 7

    def stub_classifier(data_cfg, resolution, channels, **kwargs):
        assert data_cfg.source == "stacked-mnist" and (resolution, channels) == (28, 3)
        wrapped = StackedDigitClassifier.__new__(StackedDigitClassifier)
        wrapped.digits = CountingDigits()
        return wrapped

    monkeypatch.setattr(clf, "domain_classifier", stub_classifier)
    snap = make_snapshot(tmp_path / "stacked.safetensors", "stacked-mnist-train", resolution=28, channels=3)
    data = DataConfig(source="stacked-mnist", root=str(shared_root), split="test", download=False)
    results = evaluate(snap, data, metrics=("mode-coverage",), num_mode_samples=300, **SMALL)
    assert set(results) == {"modes", "modes-kl"}
    # It classified the channels of the images of seeds 0..299, red, green, blue of each in turn.
    generator, _ = load_snapshot(snap)
    expected = generate(generator, latents_for_seeds(list(range(300)), TINY["latent_dim"]))
    assert len(seen) == 1 and torch.equal(seen[0], expected.reshape(900, 1, 28, 28))
    # Closed form: sample i reads digits (3i, 3i+1, 3i+2) mod 7, periodic in i with period 7: seven
    # modes, six hit 43 times and one 42 times (300 = 42 * 7 + 6). KL = sum p log(1000 p).
    assert results["modes"] == 7
    p = [43 / 300] * 6 + [42 / 300]
    assert results["modes-kl"] == pytest.approx(sum(q * math.log(1000 * q) for q in p), rel=1e-12)


def test_data_config_resolution(tmp_path: Path) -> None:
    snap = make_snapshot(tmp_path / "loose.safetensors", dataset="fashion-mnist-train")
    assert eval_data_config(snap).source == "fashion-mnist"
    assert eval_data_config(snap, root="/data").root == "/data"
    assert eval_data_config(snap, "mnist", split="train").split == "train"
    assert eval_data_config(snap, "mnist").split == "test"
    assert eval_data_config(snap, "digits").split == "train"  # its only split
    folder = eval_data_config(snap, str(tmp_path))
    assert (folder.source, folder.path, folder.split) == ("folder", str(tmp_path), "train")
    run = tmp_path / "00001-run"
    (run / "snapshots").mkdir(parents=True)
    cfg = Config(model=ModelConfig(**TINY), data=DataConfig(source="stacked-mnist", root="/r", max_images=5))
    (run / "config.yaml").write_text(config_to_yaml(cfg))
    nested = make_snapshot(run / "snapshots" / "snapshot-000010.safetensors")
    for target in (run, nested):
        resolved = eval_data_config(target)
        assert (resolved.source, resolved.root, resolved.split, resolved.max_images) == ("stacked-mnist", "/r",
                                                                                        "test", None)
    odd = make_snapshot(tmp_path / "odd.safetensors", dataset="my-photos")
    with pytest.raises(ConfigError, match="--data"):
        eval_data_config(odd)


def test_cli_prints_a_table_and_writes_json(snapshot: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "report.json"
    args = ["evaluate", str(snapshot), "--data", "digits", "--metrics", "spectral",
            "--num-generated", "16", "--num-real", "16", "--device", "cpu", "--no-progress", "--json", str(out)]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "spectral-distance" in printed and "periodic-ratio" in printed
    report = json.loads(out.read_text())
    assert report["data"] == "digits" and report["num_generated"] == 16
    assert set(report["metrics"]) == {"spectral-distance", "periodic-ratio", "periodic-ratio-real"}


@pytest.mark.parametrize("extra", [["--metrics", "mode-coverage"], ["--metrics", "bogus"], ["--num-real", "0"]])
def test_cli_bad_input_exits_2_with_one_line(snapshot: Path, capsys, extra: list[str]) -> None:
    assert main(["evaluate", str(snapshot), "--data", "digits", "--split", "train", "--device", "cpu", *extra]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1


def test_cli_missing_snapshot(tmp_path: Path, capsys) -> None:
    assert main(["evaluate", str(tmp_path / "nope.safetensors"), "--data", "digits", "--split", "train"]) == 2
    assert "no such snapshot" in capsys.readouterr().err


def test_a_folder_reference_is_a_seeded_sample_of_the_whole_folder(tmp_path: Path) -> None:
    """Files in name order can group alike images: the first N would be a biased reference."""
    from PIL import Image

    from deconvgan.metrics.evaluate import load_real_dataset

    for i in range(40):  # image i is flat grey level i: its pixels say which file it was
        Image.new("L", (8, 8), i).save(tmp_path / f"{i:03d}.png")
    cfg = DataConfig(source="folder", path=str(tmp_path))
    model = ModelConfig(resolution=16, channels=1)
    first, _, _ = load_real_dataset(cfg, model, 10)
    again, _, _ = load_real_dataset(cfg, model, 10)
    picked = first.images[:, 0, 0, 0].tolist()
    assert picked == again.images[:, 0, 0, 0].tolist() and picked == sorted(set(picked))  # seeded, no repeats
    assert picked != list(range(10)) and max(picked) >= 20  # drawn from the whole folder
    assert load_real_dataset(cfg, model, 100)[0].images[:, 0, 0, 0].tolist() == list(range(40))  # all of it
