"""``evaluate`` and ``deconvgan evaluate``: a tiny snapshot against the embedded digits, the metric registry."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from deconvgan.checkpoint import save_snapshot
from deconvgan.cli import main
from deconvgan.config import Config, DataConfig, ModelConfig, config_to_yaml
from deconvgan.errors import ConfigError
from deconvgan.metrics import classifier as clf
from deconvgan.metrics import inception
from deconvgan.metrics.classifier import StackedDigitClassifier
from deconvgan.metrics.evaluate import METRICS, EvalContext, eval_data_config, evaluate, parse_metrics
from deconvgan.models import build_generator

TINY = {"resolution": 16, "latent_dim": 8, "g_width": 8, "d_width": 8, "max_width": 16}
DIGITS = DataConfig(source="digits", split="train")  # the embedded set has a single split
SMALL = {"num_generated": 48, "num_real": 64, "device": "cpu", "progress": False}


def _find_shared_data() -> Path | None:
    # The repository's sibling shared/ (as CI lays it out), else the usual place.
    for candidate in (Path(__file__).resolve().parents[3] / "shared" / "data", Path("/work/shared/data")):
        if (candidate / "mnist" / "train-images-idx3-ubyte.gz").is_file():
            return candidate
    return None


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


def test_default_metrics_on_digits(snapshot: Path, tmp_path: Path) -> None:
    results = evaluate(snapshot, DIGITS, cache_dir=tmp_path / "cache", **SMALL)
    assert set(results) == {"fd-classifier", "precision", "recall", "density", "coverage",
                            "spectral-distance", "periodic-ratio", "periodic-ratio-real"}
    assert all(math.isfinite(v) for v in results.values())
    assert results["fd-classifier"] > 0 and 0 <= results["precision"] <= 1
    assert list((tmp_path / "cache" / "classifiers").glob("*.safetensors"))
    assert list((tmp_path / "cache" / "features").glob("*.safetensors"))
    again = evaluate(snapshot, DIGITS, cache_dir=tmp_path / "cache", **SMALL)  # cached real side
    assert again == results


def test_inception_metrics_with_a_stub_network(snapshot: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(inception, "InceptionFeatures", StubInception)
    results = evaluate(snapshot, DIGITS, metrics=("fid", "kid", "prdc"), extractor="inception",
                       cache_dir=tmp_path, **SMALL)
    assert set(results) == {"fid", "kid", "kid-std", "precision", "recall", "density", "coverage"}
    assert results["fid"] > 0 and results["kid-std"] >= 0


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


@pytest.mark.skipif(_find_shared_data() is None, reason="shared/data with the MNIST files is not here")
def test_mode_coverage_on_stacked_mnist(tmp_path: Path, monkeypatch) -> None:
    class ChannelMean:
        def predict(self, images: torch.Tensor) -> torch.Tensor:
            return (images.float().mean(dim=(1, 2, 3)) / 25.6).long().clamp(0, 9)

    def stub_classifier(data_cfg, resolution, channels, **kwargs):
        assert data_cfg.source == "stacked-mnist" and (resolution, channels) == (28, 3)
        wrapped = StackedDigitClassifier.__new__(StackedDigitClassifier)
        wrapped.digits = ChannelMean()
        return wrapped

    monkeypatch.setattr(clf, "domain_classifier", stub_classifier)
    snap = make_snapshot(tmp_path / "stacked.safetensors", "stacked-mnist-train", resolution=28, channels=3)
    data = DataConfig(source="stacked-mnist", root=str(_find_shared_data()), split="test", download=False)
    results = evaluate(snap, data, metrics=("mode-coverage",), num_mode_samples=300, **SMALL)
    assert set(results) == {"modes", "modes-kl"}
    assert 1 <= results["modes"] <= 300 and 0 <= results["modes-kl"] <= math.log(1000)


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
