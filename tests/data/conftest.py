"""Fixtures and helpers for the data tests: shared benchmark files, synthetic writers, a local HTTP server."""

from __future__ import annotations

import gzip
import http.server
import pickle
import struct
import threading
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import numpy as np
import pytest

from deconvgan.data.mnist import read_mnist


@pytest.fixture(scope="session")
def mnist_train_raw(shared_root: Path) -> tuple[np.ndarray, np.ndarray]:
    """MNIST train as read from the original files once per session: uint8 [60000, 28, 28], [60000]."""
    return read_mnist("mnist", "train", shared_root, download=False)


def one_line_message(exc: pytest.ExceptionInfo, *names: str) -> str:
    """The error's message, after checking it is one line naming each of ``names`` (a file, a key...)."""
    message = str(exc.value)
    assert "\n" not in message, message
    for name in names:
        assert name in message, (name, message)
    return message


def write_idx(path: Path, magic: int, array: np.ndarray, *, dims: tuple[int, ...] | None = None) -> Path:
    """Write an IDX file (gzip when the name ends in .gz); ``dims`` overrides the header's sizes."""
    shape = array.shape if dims is None else dims
    header = struct.pack(">I", magic) + struct.pack(f">{len(shape)}I", *shape)
    data = header + array.astype(np.uint8).tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(data) if path.name.endswith(".gz") else data)
    return path


def write_mnist_like(folder: Path, images: np.ndarray, labels: np.ndarray, split: str = "train",
                     gz: bool = True) -> None:
    """Write images/labels under the original MNIST file names for ``split``."""
    prefix = "train" if split == "train" else "t10k"
    suffix = ".gz" if gz else ""
    write_idx(folder / f"{prefix}-images-idx3-ubyte{suffix}", 2051, images)
    write_idx(folder / f"{prefix}-labels-idx1-ubyte{suffix}", 2049, labels)


class Py2StylePickler(pickle._Pickler):  # type: ignore[name-defined]
    """Pure-python pickler writing ``bytes`` and ``str`` as Python 2 strings (BINSTRING opcodes).

    The original CIFAR-10 python batches were written by Python 2's cPickle: their keys, the
    array's raw data and the dtype's byte-order character are all 8-bit strings, which load as
    ``bytes`` with ``encoding="bytes"``. A Python 3 pickler would write bytes through
    ``_codecs.encode`` instead, so this reproduces the genuine opcodes.
    """

    dispatch = pickle._Pickler.dispatch.copy()  # type: ignore[attr-defined]

    def _save_py2_string(self, obj: bytes | str) -> None:
        data = obj.encode("latin-1") if isinstance(obj, str) else obj
        if len(data) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(data)]) + data)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(data)) + data)
        self.memoize(obj)

    dispatch[bytes] = _save_py2_string
    dispatch[str] = _save_py2_string


def py2_pickle(obj: object) -> bytes:
    """Pickle ``obj`` (protocol 2) the way Python 2 would have."""
    import io

    buf = io.BytesIO()
    Py2StylePickler(buf, protocol=2).dump(obj)
    # Python 2 era numpy lived at numpy.core; the genuine batches name that module.
    return buf.getvalue().replace(b"cnumpy._core.multiarray\n", b"cnumpy.core.multiarray\n")


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base class's name
        pass


@pytest.fixture()
def http_dir(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """A local HTTP server on 127.0.0.1 serving a temp folder: yields (folder, base URL ending in '/')."""
    served = tmp_path / "served"
    served.mkdir()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(_QuietHandler, directory=str(served)))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield served, f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
