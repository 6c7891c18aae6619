"""CIFAR-10 from the original archives under ``<root>/cifar10/``, binary or python version.

Looked for in this order: the extracted ``cifar-10-batches-bin/`` or ``cifar-10-batches-py/``
folder, then ``cifar-10-binary.tar.gz`` or ``cifar-10-python.tar.gz`` (read in place, nothing is
extracted). If none is present and ``data.download`` is true, the *binary* archive is
downloaded: it needs no unpickling at all. The python batches go through
:mod:`deconvgan.data.safepickle`, never through an unrestricted unpickler.
"""

from __future__ import annotations

import gzip
import tarfile
import zlib
from pathlib import Path

import numpy as np
import torch

from deconvgan.config import DataConfig
from deconvgan.data.dataset import (
    DATA_ROOT_ENV,
    ImageDataset,
    check_memory,
    keep_first,
    one_line,
    resolve_data_root,
)
from deconvgan.data.download import MIRRORS, download_file
from deconvgan.data.resize import to_geometry
from deconvgan.data.safepickle import restricted_loads
from deconvgan.errors import DataError

SIDE = 32
PIXELS = 3 * SIDE * SIDE  # 3072: R plane, G plane, B plane, each 32x32 row-major
RECORD = 1 + PIXELS  # binary record: one label byte, then the pixels
NUM_CLASSES = 10

BINARY_DIR = "cifar-10-batches-bin"
PYTHON_DIR = "cifar-10-batches-py"
BINARY_TAR = "cifar-10-binary.tar.gz"
PYTHON_TAR = "cifar-10-python.tar.gz"
MD5 = {BINARY_TAR: "c32a1d4ab5d03f1284b67883e8d87530", PYTHON_TAR: "c58f30108f718f92721af3b95e74349a"}
SPLIT_BATCHES = {"train": [f"data_batch_{i}" for i in range(1, 6)], "test": ["test_batch"]}


def parse_binary_batch(data: bytes, where: str) -> tuple[np.ndarray, np.ndarray]:
    """A binary batch -> uint8 images ``[n, 3, 32, 32]`` and uint8 labels ``[n]``."""
    if not data or len(data) % RECORD:
        raise DataError(
            f"{where}: {len(data)} bytes is not a whole number of {RECORD}-byte records "
            "(1 label byte + 3072 pixel bytes); the file is truncated or not a CIFAR-10 binary batch"
        )
    records = np.frombuffer(data, dtype=np.uint8).reshape(-1, RECORD)
    labels = records[:, 0].copy()
    images = records[:, 1:].reshape(-1, 3, SIDE, SIDE)
    return images, _check_labels(labels, where)


def parse_python_batch(data: bytes, where: str) -> tuple[np.ndarray, np.ndarray]:
    """A pickled python batch (dict with b'data' uint8 ``[n, 3072]`` and b'labels') -> images, labels."""
    batch = restricted_loads(data, where)
    if not isinstance(batch, dict):
        raise DataError(f"{where}: holds a {type(batch).__name__}, not a CIFAR-10 batch dict")
    pixels = batch.get(b"data", batch.get("data"))
    labels = batch.get(b"labels", batch.get("labels"))
    ok = isinstance(pixels, np.ndarray) and pixels.dtype == np.uint8 and pixels.ndim == 2
    if not ok or pixels.shape[1] != PIXELS:
        shape = getattr(pixels, "shape", None)
        raise DataError(
            f"{where}: b'data' is not a uint8 [n, 3072] array (got {type(pixels).__name__} {shape})"
        )
    try:
        labels_array = np.asarray(labels, dtype=np.int64)
    except (TypeError, ValueError):
        labels_array = np.empty(0)
    if labels is None or labels_array.shape != (len(pixels),):
        raise DataError(f"{where}: b'labels' is not a list of {len(pixels)} integers")
    return pixels.reshape(-1, 3, SIDE, SIDE), _check_labels(labels_array, where)


def _check_labels(labels: np.ndarray, where: str) -> np.ndarray:
    bad = np.flatnonzero((labels < 0) | (labels >= NUM_CLASSES))
    if bad.size:
        raise DataError(
            f"{where}: label {int(labels[bad[0]])} of record {int(bad[0])} is outside 0..9; damaged file"
        )
    return labels.astype(np.int64)


def _read_folder(folder: Path, batches: list[str], binary: bool) -> list[tuple[np.ndarray, np.ndarray]]:
    parts = []
    for batch in batches:
        path = folder / (f"{batch}.bin" if binary else batch)
        if not path.is_file():
            raise DataError(
                f"{path} is missing; the extracted CIFAR-10 folder is incomplete -- extract the archive again"
            )
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise DataError(f"{path}: cannot read ({exc.strerror or exc})") from None
        parts.append((parse_binary_batch if binary else parse_python_batch)(data, str(path)))
    return parts


def _read_tar(path: Path, batches: list[str], binary: bool) -> list[tuple[np.ndarray, np.ndarray]]:
    prefix = BINARY_DIR if binary else PYTHON_DIR
    wanted = {f"{prefix}/{b}.bin" if binary else f"{prefix}/{b}": b for b in batches}
    found: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    try:
        # Stream mode reads the archive once, front to back; members are read, never extracted.
        with tarfile.open(path, "r|gz") as tar:
            for member in tar:
                name = member.name.removeprefix("./")
                if name in wanted and member.isfile():
                    handle = tar.extractfile(member)
                    assert handle is not None  # a regular file always has a handle
                    where = f"{path}:{name}"
                    parse = parse_binary_batch if binary else parse_python_batch
                    found[wanted[name]] = parse(handle.read(), where)
    except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile, OSError) as exc:
        raise DataError(f"{path}: not a readable tar.gz archive ({one_line(exc)}); re-download it") from None
    missing = [m for m, b in wanted.items() if b not in found]
    if missing:
        raise DataError(
            f"{path}: archive lacks {', '.join(missing)}; incomplete or not {path.name}; re-download it"
        )
    return [found[b] for b in batches]


def read_cifar10(root: Path, split: str, download: bool) -> tuple[np.ndarray, np.ndarray]:
    """The raw split: uint8 images ``[N, 3, 32, 32]`` and int64 labels ``[N]``."""
    folder = root / "cifar10"
    batches = SPLIT_BATCHES[split]
    if (folder / BINARY_DIR).is_dir():
        parts = _read_folder(folder / BINARY_DIR, batches, binary=True)
    elif (folder / PYTHON_DIR).is_dir():
        parts = _read_folder(folder / PYTHON_DIR, batches, binary=False)
    elif (folder / BINARY_TAR).is_file():
        parts = _read_tar(folder / BINARY_TAR, batches, binary=True)
    elif (folder / PYTHON_TAR).is_file():
        parts = _read_tar(folder / PYTHON_TAR, batches, binary=False)
    elif download:
        archive = download_file(BINARY_TAR, MD5[BINARY_TAR], MIRRORS["cifar10"], folder)
        parts = _read_tar(archive, batches, binary=True)
    else:
        raise DataError(
            f"cifar10: none of {BINARY_DIR}/, {PYTHON_DIR}/, {BINARY_TAR}, {PYTHON_TAR} found in {folder}; "
            f"put one there, pass --data-root DIR or set {DATA_ROOT_ENV} to the folder holding cifar10/, "
            "or set data.download=true"
        )
    images = np.concatenate([p[0] for p in parts])
    labels = np.concatenate([p[1] for p in parts])
    return images, labels


def load_cifar10(cfg: DataConfig, resolution: int, channels: int) -> ImageDataset:
    """CIFAR-10 at the requested geometry (grayscale by Pillow-exact luma when ``channels=1``)."""
    images, labels = read_cifar10(resolve_data_root(cfg.root), cfg.split, cfg.download)
    n = keep_first(len(images), cfg.max_images)
    name = f"cifar10-{cfg.split}"
    # The raw split is at most 180 MB; the converted set is what can outgrow memory.
    check_memory(n, channels, resolution, name)
    x = torch.from_numpy(np.ascontiguousarray(images[:n]))  # [n, 3, 32, 32]
    return ImageDataset(
        images=to_geometry(x, resolution, channels),
        labels=torch.from_numpy(labels[:n]),
        name=name,
        num_classes=NUM_CLASSES,
    )
