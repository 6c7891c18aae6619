"""MNIST and Fashion-MNIST from the original files in shared/data, and the IDX source's error paths."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest
import torch

from deconvgan.config import DataConfig
from deconvgan.data import ImageDataset, load_dataset
from deconvgan.errors import DataError

from .conftest import one_line_message, write_mnist_like

MNIST_TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]


def _cfg(root: Path, source: str = "mnist", **kw: object) -> DataConfig:
    return DataConfig(source=source, root=str(root), download=False, **kw)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def mnist_train(shared_root: Path) -> ImageDataset:
    return load_dataset(_cfg(shared_root), 28, 1)


def test_mnist_train_matches_the_published_statistics(mnist_train: ImageDataset) -> None:
    assert mnist_train.images.shape == (60000, 1, 28, 28)
    assert mnist_train.images.dtype == torch.uint8 and mnist_train.images.is_contiguous()
    assert mnist_train.name == "mnist-train" and mnist_train.num_classes == 10
    assert mnist_train.images.double().mean().item() == pytest.approx(33.318, abs=5e-4)
    assert mnist_train.labels is not None and mnist_train.labels.dtype == torch.int64
    assert torch.bincount(mnist_train.labels).tolist() == MNIST_TRAIN_COUNTS


def test_native_resolution_is_bit_exact(mnist_train: ImageDataset, shared_root: Path) -> None:
    raw = gzip.decompress((shared_root / "mnist" / "train-images-idx3-ubyte.gz").read_bytes())
    assert mnist_train.images.numpy().tobytes() == raw[16:]  # 16-byte header, then the pixels as stored
    labels = gzip.decompress((shared_root / "mnist" / "train-labels-idx1-ubyte.gz").read_bytes())
    assert mnist_train.labels is not None
    assert bytes(mnist_train.labels.to(torch.uint8).numpy()) == labels[8:]


def test_mnist_test_split_resized_and_rgb(shared_root: Path) -> None:
    test = load_dataset(_cfg(shared_root, split="test"), 28, 1)
    assert test.images.shape == (10000, 1, 28, 28) and test.name == "mnist-test"
    assert test.images.double().mean().item() == pytest.approx(33.791, abs=5e-4)
    big = load_dataset(_cfg(shared_root, split="test"), 32, 1)
    assert big.images.shape == (10000, 1, 32, 32)
    # Resampling keeps the brightness (up to rounding and the zero border's spread).
    assert abs(big.images.double().mean().item() - 33.791) < 0.5
    rgb = load_dataset(_cfg(shared_root, split="test", max_images=100), 32, 3)
    assert rgb.images.shape == (100, 3, 32, 32) and rgb.images.is_contiguous()
    assert torch.equal(rgb.images[:, 0], big.images[:100, 0])
    assert torch.equal(rgb.images[:, 1], rgb.images[:, 0]) and torch.equal(rgb.images[:, 2], rgb.images[:, 0])
    assert rgb.labels is not None and torch.equal(rgb.labels, test.labels[:100])  # type: ignore[index]


def test_fashion_mnist(shared_root: Path) -> None:
    train = load_dataset(_cfg(shared_root, "fashion-mnist"), 28, 1)
    assert train.images.shape == (60000, 1, 28, 28) and train.name == "fashion-mnist-train"
    assert train.images.double().mean().item() == pytest.approx(72.940, abs=5e-4)
    assert train.labels is not None and torch.bincount(train.labels).tolist() == [6000] * 10
    test = load_dataset(_cfg(shared_root, "fashion-mnist", split="test", max_images=1000), 28, 1)
    assert test.images.shape == (1000, 1, 28, 28)


def test_max_images_keeps_the_first(tmp_path: Path) -> None:
    images = np.arange(6 * 28 * 28, dtype=np.int64).reshape(6, 28, 28) % 251
    write_mnist_like(tmp_path / "mnist", images, np.arange(6) % 10)
    ds = load_dataset(_cfg(tmp_path, max_images=4), 28, 1)
    assert ds.images.shape == (4, 1, 28, 28)
    np.testing.assert_array_equal(ds.images[:, 0].numpy(), images[:4])
    assert ds.labels is not None and ds.labels.tolist() == [0, 1, 2, 3]


def test_uncompressed_files_are_accepted(tmp_path: Path) -> None:
    images = np.random.default_rng(0).integers(0, 256, (3, 28, 28))
    write_mnist_like(tmp_path / "fashion-mnist", images, np.array([9, 0, 5]), split="test", gz=False)
    ds = load_dataset(_cfg(tmp_path, "fashion-mnist", split="test"), 28, 1)
    np.testing.assert_array_equal(ds.images[:, 0].numpy(), images)


def test_missing_files_without_download(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="train-images-idx3-ubyte.gz") as exc:
        load_dataset(_cfg(tmp_path), 28, 1)
    one_line_message(exc, str(tmp_path / "mnist"), "DECONVGAN_DATA_ROOT", "--data-root")


def test_label_count_mismatch_names_the_files(tmp_path: Path) -> None:
    write_mnist_like(tmp_path / "mnist", np.zeros((3, 28, 28)), np.zeros(2))
    with pytest.raises(DataError, match="train-images-idx3-ubyte.gz holds 3 images"):
        load_dataset(_cfg(tmp_path), 28, 1)


def test_env_root_is_used(shared_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DECONVGAN_DATA_ROOT", str(shared_root))
    ds = load_dataset(DataConfig(source="mnist", split="test", download=False, max_images=10), 28, 1)
    assert ds.images.shape == (10, 1, 28, 28)
