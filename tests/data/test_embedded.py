"""The embedded default dataset: 1797 UCI digits, offline."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import torch

import deconvgan.data.embedded as embedded
from deconvgan.config import DataConfig
from deconvgan.data import load_dataset
from deconvgan.errors import DataError

SKLEARN_COUNTS = [178, 182, 177, 183, 181, 182, 181, 179, 174, 180]
EMBEDDED = Path(embedded.__file__).parent / "embedded"


def test_digits_default_at_16() -> None:
    ds = load_dataset(DataConfig(), 16, 1)
    assert ds.images.shape == (1797, 1, 16, 16) and ds.images.dtype == torch.uint8
    assert ds.name == "digits" and ds.num_classes == 10
    assert ds.labels is not None and torch.bincount(ds.labels).tolist() == SKLEARN_COUNTS
    assert ds.images.max().item() == 255 and ds.images.min().item() == 0


def test_digits_native_values_are_the_rescaled_counts() -> None:
    ds = load_dataset(DataConfig(), 8, 1)
    assert ds.images.shape == (1797, 1, 8, 8)
    allowed = {(v * 255 + 8) // 16 for v in range(17)}  # round(v * 255 / 16) for v = 0..16
    assert set(ds.images.unique().tolist()) <= allowed
    assert ds.images.unique().numel() == 17


def test_digits_rgb_and_max_images() -> None:
    ds = load_dataset(DataConfig(max_images=10), 32, 3)
    assert ds.images.shape == (10, 3, 32, 32)
    assert ds.labels is not None and ds.labels.tolist()[:10] == [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]


def test_digits_has_no_test_split() -> None:
    with pytest.raises(DataError, match="single split"):
        load_dataset(DataConfig(split="test"), 16, 1)


def test_embedded_files_match_the_readme() -> None:
    readme = (EMBEDDED / "README.md").read_text(encoding="utf-8")
    assert "CC BY 4.0" in readme and "Alpaydin" in readme
    for name in ("digits-images-idx3-ubyte.gz", "digits-labels-idx1-ubyte.gz"):
        assert hashlib.md5((EMBEDDED / name).read_bytes()).hexdigest() in readme
