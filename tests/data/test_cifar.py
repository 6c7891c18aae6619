"""CIFAR-10 in both original formats, built synthetically (the real archive is not on this machine)."""

from __future__ import annotations

import io
import pickle
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import deconvgan.data.cifar as cifar
from deconvgan.config import DataConfig
from deconvgan.data import load_dataset
from deconvgan.data.download import MIRRORS, md5_of
from deconvgan.errors import DataError

from .conftest import one_line_message, py2_pickle

BATCHES = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
PER_BATCH = 3


def _batches(seed: int = 0) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(seed)
    return {b: (rng.integers(0, 256, (PER_BATCH, 3, 32, 32), dtype=np.uint8),
                rng.integers(0, 10, PER_BATCH, dtype=np.uint8)) for b in BATCHES}


def _binary(images: np.ndarray, labels: np.ndarray) -> bytes:
    records = np.concatenate([labels[:, None], images.reshape(len(images), -1)], axis=1)  # [n, 1 + 3072]
    return records.astype(np.uint8).tobytes()


def _python(images: np.ndarray, labels: np.ndarray, py2: bool = True) -> bytes:
    batch = {b"batch_label": b"synthetic", b"labels": [int(v) for v in labels],
             b"data": images.reshape(len(images), -1), b"filenames": [b"x.png"] * len(labels)}
    return py2_pickle(batch) if py2 else pickle.dumps(batch, protocol=4)


Batches = dict[str, tuple[np.ndarray, np.ndarray]]


def _members(data: Batches, binary: bool, py2: bool = True) -> dict[str, bytes]:
    if binary:
        return {f"{b}.bin": _binary(*v) for b, v in data.items()}
    return {b: _python(*v, py2=py2) for b, v in data.items()}


def _write_tar(path: Path, folder: str, members: dict[str, bytes]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz") as tar:
        for name, data in {"batches.meta": b"meta", **members}.items():
            info = tarfile.TarInfo(f"{folder}/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def _write_dir(folder: Path, members: dict[str, bytes]) -> None:
    folder.mkdir(parents=True)
    for name, data in members.items():
        (folder / name).write_bytes(data)


def _cfg(root: Path, **kw: object) -> DataConfig:
    return DataConfig(source="cifar10", root=str(root), download=False, **kw)  # type: ignore[arg-type]


def _expected(data: dict[str, tuple[np.ndarray, np.ndarray]], split: str) -> tuple[np.ndarray, np.ndarray]:
    names = BATCHES[:5] if split == "train" else ["test_batch"]
    return np.concatenate([data[b][0] for b in names]), np.concatenate([data[b][1] for b in names])


@pytest.mark.parametrize("layout", ["bin-dir", "bin-tar", "py-dir", "py-tar", "py3-tar"])
def test_every_layout_loads_both_splits(tmp_path: Path, layout: str) -> None:
    data = _batches()
    binary = layout.startswith("bin")
    members = _members(data, binary, py2=layout != "py3-tar")
    folder = tmp_path / "cifar10"
    if layout.endswith("dir"):
        _write_dir(folder / (cifar.BINARY_DIR if binary else cifar.PYTHON_DIR), members)
    else:
        tar_name = cifar.BINARY_TAR if binary else cifar.PYTHON_TAR
        _write_tar(folder / tar_name, cifar.BINARY_DIR if binary else cifar.PYTHON_DIR, members)
    for split in ("train", "test"):
        ds = load_dataset(_cfg(tmp_path, split=split), 32, 3)
        images, labels = _expected(data, split)
        assert ds.images.shape == (len(images), 3, 32, 32) and ds.name == f"cifar10-{split}"
        assert ds.num_classes == 10 and ds.images.is_contiguous()
        np.testing.assert_array_equal(ds.images.numpy(), images)  # R, G, B planes land in channels 0, 1, 2
        assert ds.labels is not None and ds.labels.dtype == torch.int64
        np.testing.assert_array_equal(ds.labels.numpy(), labels)


def test_grayscale_is_pillow_luma_and_resize(tmp_path: Path) -> None:
    data = _batches(1)
    _write_dir(tmp_path / "cifar10" / cifar.BINARY_DIR, _members(data, binary=True))
    gray = load_dataset(_cfg(tmp_path, split="test"), 32, 1)
    first = data["test_batch"][0][0]  # [3, 32, 32]
    pillow = np.asarray(Image.fromarray(first.transpose(1, 2, 0), "RGB").convert("L"))
    np.testing.assert_array_equal(gray.images[0, 0].numpy(), pillow)
    small = load_dataset(_cfg(tmp_path, max_images=7), 16, 3)
    assert small.images.shape == (7, 3, 16, 16)


def test_truncated_binary_batch(tmp_path: Path) -> None:
    members = _members(_batches(), binary=True)
    members["data_batch_3.bin"] = members["data_batch_3.bin"][:-100]
    _write_dir(tmp_path / "cifar10" / cifar.BINARY_DIR, members)
    with pytest.raises(DataError, match="3073-byte records") as exc:
        load_dataset(_cfg(tmp_path), 32, 3)
    one_line_message(exc, "data_batch_3.bin")


def test_bad_label_in_binary_batch(tmp_path: Path) -> None:
    data = _batches()
    data["test_batch"][1][2] = 10
    _write_tar(tmp_path / "cifar10" / cifar.BINARY_TAR, cifar.BINARY_DIR, _members(data, binary=True))
    with pytest.raises(DataError, match="label 10 of record 2") as exc:
        load_dataset(_cfg(tmp_path, split="test"), 32, 3)
    one_line_message(exc, "test_batch.bin")


def test_missing_batch_in_folder_and_archive(tmp_path: Path) -> None:
    members = _members(_batches(), binary=False)
    del members["data_batch_5"]
    _write_dir(tmp_path / "a" / "cifar10" / cifar.PYTHON_DIR, members)
    with pytest.raises(DataError, match="data_batch_5") as exc:
        load_dataset(_cfg(tmp_path / "a"), 32, 3)
    one_line_message(exc, "data_batch_5")
    _write_tar(tmp_path / "b" / "cifar10" / cifar.PYTHON_TAR, cifar.PYTHON_DIR, members)
    with pytest.raises(DataError, match="archive lacks") as exc:
        load_dataset(_cfg(tmp_path / "b"), 32, 3)
    one_line_message(exc, "data_batch_5")


def test_corrupt_archive(tmp_path: Path) -> None:
    path = tmp_path / "cifar10" / cifar.BINARY_TAR
    _write_tar(path, cifar.BINARY_DIR, _members(_batches(), binary=True))
    path.write_bytes(path.read_bytes()[:2000])
    with pytest.raises(DataError, match="not a readable tar.gz") as exc:
        load_dataset(_cfg(tmp_path), 32, 3)
    one_line_message(exc, cifar.BINARY_TAR)


def test_malicious_python_batch_is_refused(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self) -> tuple[object, tuple[str]]:
            import os

            return (os.system, (f"echo pwned > {marker}",))

    members = _members(_batches(), binary=False)
    members["test_batch"] = pickle.dumps({b"data": Evil(), b"labels": [0]}, protocol=2)
    _write_tar(tmp_path / "cifar10" / cifar.PYTHON_TAR, cifar.PYTHON_DIR, members)
    with pytest.raises(DataError, match="refusing to unpickle") as exc:
        load_dataset(_cfg(tmp_path, split="test"), 32, 3)
    one_line_message(exc, "test_batch")
    assert not marker.exists()


def test_python_batch_of_the_wrong_shape(tmp_path: Path) -> None:
    members = _members(_batches(), binary=False)
    members["test_batch"] = py2_pickle({b"data": np.zeros((2, 100), np.uint8), b"labels": [0, 1]})
    _write_dir(tmp_path / "cifar10" / cifar.PYTHON_DIR, members)
    with pytest.raises(DataError, match=r"uint8 \[n, 3072\]"):
        load_dataset(_cfg(tmp_path, split="test"), 32, 3)


def test_nothing_present(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="DECONVGAN_DATA_ROOT") as exc:
        load_dataset(_cfg(tmp_path), 32, 3)
    one_line_message(exc, str(tmp_path / "cifar10"), cifar.BINARY_TAR)


def test_binary_archive_is_downloaded(
    http_dir: tuple[Path, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    served, url = http_dir
    data = _batches(2)
    _write_tar(served / cifar.BINARY_TAR, cifar.BINARY_DIR, _members(data, binary=True))
    monkeypatch.setitem(MIRRORS, "cifar10", (url,))
    monkeypatch.setitem(cifar.MD5, cifar.BINARY_TAR, md5_of(served / cifar.BINARY_TAR))
    root = tmp_path / "root"
    ds = load_dataset(DataConfig(source="cifar10", split="test", root=str(root), download=True), 32, 3)
    np.testing.assert_array_equal(ds.images.numpy(), data["test_batch"][0])
    assert (root / "cifar10" / cifar.BINARY_TAR).is_file()
