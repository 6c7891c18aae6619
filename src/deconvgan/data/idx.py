"""Reader for IDX files (the MNIST format), gzip-compressed or not, with one-line errors.

An IDX file is a big-endian header -- magic ``0x0000TTDD`` (TT = 0x08 for unsigned bytes,
DD = number of dimensions), then DD uint32 sizes -- followed by the items as raw bytes.
Images are magic 2051 (3 dims: N x rows x cols), labels magic 2049 (1 dim: N).
"""

from __future__ import annotations

import gzip
import struct
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

import numpy as np

from deconvgan.errors import DataError

IMAGES_MAGIC = 2051
LABELS_MAGIC = 2049
_UBYTE = 0x08


def _open(path: Path) -> BinaryIO:
    if path.name.endswith(".gz"):
        return gzip.open(path, "rb")  # type: ignore[return-value]
    return open(path, "rb")


def _read_exact(f: BinaryIO, buf: bytearray | memoryview) -> int:
    """Fill ``buf`` as far as the stream allows; return how many bytes were read."""
    view = memoryview(buf)
    got = 0
    while got < len(view):
        n = f.readinto(view[got:])  # type: ignore[attr-defined]
        if not n:
            break
        got += n
    return got


def read_idx(
    path: Path,
    magic: int,
    item_shape: tuple[int, ...] | None = None,
    before_payload: Callable[[int], None] | None = None,
) -> np.ndarray:
    """Read an unsigned-byte IDX file into a writable uint8 array of the header's shape.

    ``magic`` is the expected magic number (2051 images, 2049 labels); ``item_shape`` the expected
    per-item dims (e.g. (28, 28)), checked against the header. ``before_payload(count)`` runs after
    the header is parsed and before the payload is read (the memory guard hooks in here).
    Raises DataError for a wrong magic, inconsistent dims, a truncated or over-long payload, or a
    corrupt gzip stream -- each naming the file.
    """
    try:
        with _open(path) as f:
            head = f.read(4)
            if len(head) < 4:
                raise DataError(f"{path}: truncated IDX file ({len(head)} bytes, no header); re-download it")
            (found,) = struct.unpack(">I", head)
            if found != magic:
                raise DataError(
                    f"{path}: wrong magic number {found} (expected {magic}); is this the right file "
                    f"({'images' if magic == IMAGES_MAGIC else 'labels'})? re-download it"
                )
            ndim = found & 0xFF
            if (found >> 8) & 0xFF != _UBYTE:
                raise DataError(f"{path}: IDX data type {(found >> 8) & 0xFF:#x} is not unsigned byte (0x08)")
            raw = f.read(4 * ndim)
            if len(raw) < 4 * ndim:
                raise DataError(f"{path}: truncated IDX header ({4 + len(raw)} of {4 + 4 * ndim} bytes)")
            dims = struct.unpack(f">{ndim}I", raw)
            if dims[0] == 0 or any(d == 0 for d in dims):
                shown = "x".join(map(str, dims))
                raise DataError(f"{path}: header dims {shown} contain a zero; the file is damaged")
            if item_shape is not None and tuple(dims[1:]) != tuple(item_shape):
                want = "x".join(map(str, item_shape)) if item_shape else "scalar"
                raise DataError(
                    f"{path}: header says items of {'x'.join(map(str, dims[1:])) or 'scalar'}, "
                    f"expected {want}; "
                    "the header dims are inconsistent with this dataset"
                )
            if before_payload is not None:
                before_payload(dims[0])
            size = int(np.prod(dims, dtype=np.int64))
            buf = bytearray(size + 1)  # one spare byte detects a payload longer than the header says
            got = _read_exact(f, buf)
    except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
        raise DataError(f"{path}: corrupt or truncated gzip stream ({exc}); re-download it") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror or exc})") from None
    if got < size:
        raise DataError(
            f"{path}: truncated: payload is {got} bytes but the header ({'x'.join(map(str, dims))}) "
            f"says {size}; re-download it"
        )
    if got > size:
        raise DataError(
            f"{path}: payload is longer than the header ({'x'.join(map(str, dims))}) says; damaged file"
        )
    return np.frombuffer(buf, dtype=np.uint8, count=size).reshape(dims)


def read_idx_pair(
    images_path: Path,
    labels_path: Path,
    item_shape: tuple[int, int],
    num_classes: int,
    before_payload: Callable[[int], None] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Read matching image and label IDX files: uint8 ``[N, rows, cols]`` and uint8 ``[N]``.

    Checks that both hold the same number of items and that every label is in ``0..num_classes-1``.
    """
    labels = read_idx(labels_path, LABELS_MAGIC, ())
    images = read_idx(images_path, IMAGES_MAGIC, item_shape, before_payload)
    if len(images) != len(labels):
        raise DataError(
            f"{images_path.name} holds {len(images)} images but {labels_path.name} holds {len(labels)} "
            f"labels (in {images_path.parent}); the files do not belong together -- re-download them"
        )
    bad = np.flatnonzero(labels >= num_classes)
    if bad.size:
        raise DataError(
            f"{labels_path}: label {int(labels[bad[0]])} at index {int(bad[0])} is outside "
            f"0..{num_classes - 1}; the file is damaged -- re-download it"
        )
    return images, labels
