"""IDX reader: valid files (gzip, raw) and every kind of damage, each a one-line DataError naming the file."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest

from deconvgan.data.idx import IMAGES_MAGIC, LABELS_MAGIC, read_idx, read_idx_pair
from deconvgan.errors import DataError

from .conftest import one_line_message, write_idx


def _images(n: int = 5, side: int = 4) -> np.ndarray:
    return np.arange(n * side * side, dtype=np.uint8).reshape(n, side, side)


@pytest.mark.parametrize("name", ["x-idx3-ubyte.gz", "x-idx3-ubyte"])
def test_reads_gzip_and_raw(tmp_path: Path, name: str) -> None:
    array = _images()
    path = write_idx(tmp_path / name, IMAGES_MAGIC, array)
    got = read_idx(path, IMAGES_MAGIC, (4, 4))
    assert got.dtype == np.uint8 and got.shape == (5, 4, 4)
    np.testing.assert_array_equal(got, array)
    assert got.flags.writeable  # torch.from_numpy on it must not warn


def test_before_payload_gets_the_count(tmp_path: Path) -> None:
    path = write_idx(tmp_path / "a.gz", IMAGES_MAGIC, _images(7))
    seen: list[int] = []
    read_idx(path, IMAGES_MAGIC, (4, 4), seen.append)
    assert seen == [7]


def test_wrong_magic(tmp_path: Path) -> None:
    path = write_idx(tmp_path / "labels-as-images.gz", LABELS_MAGIC, np.zeros(5, np.uint8))
    with pytest.raises(DataError, match="wrong magic number 2049") as exc:
        read_idx(path, IMAGES_MAGIC, (4, 4))
    one_line_message(exc, "labels-as-images.gz")


@pytest.mark.parametrize("name", ["short.gz", "short"])
def test_truncated_payload(tmp_path: Path, name: str) -> None:
    # The header claims 10 images, the payload holds 5.
    path = write_idx(tmp_path / name, IMAGES_MAGIC, _images(5), dims=(10, 4, 4))
    with pytest.raises(DataError, match="truncated") as exc:
        read_idx(path, IMAGES_MAGIC, (4, 4))
    one_line_message(exc, name)


def test_payload_longer_than_header(tmp_path: Path) -> None:
    path = write_idx(tmp_path / "long.gz", IMAGES_MAGIC, _images(5), dims=(4, 4, 4))
    with pytest.raises(DataError, match="longer than the header") as exc:
        read_idx(path, IMAGES_MAGIC, (4, 4))
    one_line_message(exc, "long.gz")


def test_truncated_gzip_stream(tmp_path: Path) -> None:
    path = write_idx(tmp_path / "cut.gz", IMAGES_MAGIC, np.random.default_rng(0).integers(0, 256, (50, 8, 8)))
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(DataError, match="gzip") as exc:
        read_idx(path, IMAGES_MAGIC, (8, 8))
    one_line_message(exc, "cut.gz")


def test_not_gzip_at_all(tmp_path: Path) -> None:
    path = tmp_path / "plain.gz"
    path.write_bytes(b"this is not gzip data at all")
    with pytest.raises(DataError, match="corrupt or truncated gzip stream") as exc:
        read_idx(path, IMAGES_MAGIC, (8, 8))
    one_line_message(exc, "plain.gz")


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty"
    path.write_bytes(b"")
    with pytest.raises(DataError, match="truncated") as exc:
        read_idx(path, IMAGES_MAGIC)
    one_line_message(exc, "empty")


def test_inconsistent_header_dims(tmp_path: Path) -> None:
    path = write_idx(tmp_path / "odd.gz", IMAGES_MAGIC, _images(5, side=4))
    with pytest.raises(DataError, match="inconsistent") as exc:
        read_idx(path, IMAGES_MAGIC, (28, 28))
    one_line_message(exc, "odd.gz")


def test_zero_dim_header(tmp_path: Path) -> None:
    path = write_idx(tmp_path / "zero.gz", IMAGES_MAGIC, np.zeros(0, np.uint8), dims=(0, 4, 4))
    with pytest.raises(DataError, match="zero") as exc:
        read_idx(path, IMAGES_MAGIC, (4, 4))
    one_line_message(exc, "zero.gz")


def test_non_ubyte_type(tmp_path: Path) -> None:
    path = tmp_path / "float.gz"
    path.write_bytes(gzip.compress(bytes([0, 0, 0x0D, 1]) + (1).to_bytes(4, "big") + b"\0" * 4))
    with pytest.raises(DataError, match="unsigned byte"):
        read_idx(path, 0x0D01)


def test_pair_counts_disagree(tmp_path: Path) -> None:
    images = write_idx(tmp_path / "imgs.gz", IMAGES_MAGIC, _images(5))
    labels = write_idx(tmp_path / "labs.gz", LABELS_MAGIC, np.zeros(4, np.uint8))
    with pytest.raises(DataError, match="5 images but labs.gz holds 4") as exc:
        read_idx_pair(images, labels, (4, 4), 10)
    one_line_message(exc, "imgs.gz")


def test_pair_label_out_of_range(tmp_path: Path) -> None:
    images = write_idx(tmp_path / "imgs.gz", IMAGES_MAGIC, _images(3))
    labels = write_idx(tmp_path / "labs.gz", LABELS_MAGIC, np.array([1, 10, 2], np.uint8))
    with pytest.raises(DataError, match=r"label 10 at index 1 is outside 0\.\.9") as exc:
        read_idx_pair(images, labels, (4, 4), 10)
    one_line_message(exc, "labs.gz")
