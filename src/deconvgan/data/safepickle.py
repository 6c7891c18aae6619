"""A restricted unpickler for the CIFAR-10 python batches: only numpy array reconstruction.

Project rule: a user-supplied file is never unpickled unrestrictedly, because a pickle can name
any importable callable (``os.system`` ...) and have it called while loading. This unpickler
resolves only the handful of globals that rebuilding a numpy array needs; any other global
raises DataError before anything is called.
"""

from __future__ import annotations

import io
import pickle
import struct
from typing import Any

import numpy as np

from deconvgan.data.dataset import one_line
from deconvgan.errors import DataError


def _allowed_globals() -> dict[tuple[str, str], Any]:
    """(module, name) -> object for every global a pickled numpy array may reference.

    Resolved here directly instead of by importing the module named in the pickle, so no
    module is ever imported on a pickle's say-so (and numpy 2's deprecated ``numpy.core``
    aliases are not touched).
    """
    if int(np.__version__.split(".")[0]) >= 2:
        from numpy._core import multiarray, numeric
    else:  # pragma: no cover - numpy 1.x
        from numpy.core import multiarray, numeric
    import _codecs

    reconstruct = multiarray._reconstruct  # ndarray.__reduce__ (pickle protocols 0-4)
    frombuffer = numeric._frombuffer  # ndarray.__reduce_ex__ with protocol 5
    return {
        # Python 2 and numpy 1.x pickles (the original CIFAR-10 archive) name numpy.core;
        # numpy 2 writes numpy._core.
        ("numpy.core.multiarray", "_reconstruct"): reconstruct,
        ("numpy._core.multiarray", "_reconstruct"): reconstruct,
        ("numpy.core.numeric", "_frombuffer"): frombuffer,
        ("numpy._core.numeric", "_frombuffer"): frombuffer,
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
        # Python 3 writes bytes as _codecs.encode(str, "latin1") under protocols 0-2; pure data.
        ("_codecs", "encode"): _codecs.encode,
    }


class RestrictedUnpickler(pickle.Unpickler):
    """``pickle.Unpickler`` whose ``find_class`` admits only numpy array reconstruction.

    ``where`` names the file (or archive member) in error messages.
    """

    def __init__(self, file: io.BufferedIOBase, where: str, **kwargs: Any) -> None:
        super().__init__(file, **kwargs)
        self.where = where
        self._allowed = _allowed_globals()

    def find_class(self, module: str, name: str) -> Any:
        obj = self._allowed.get((module, name))
        if obj is None:
            raise DataError(
                f"{self.where}: refusing to unpickle {module}.{name} (only numpy arrays are allowed in a "
                "CIFAR-10 batch); not a genuine CIFAR-10 batch -- use cifar-10-binary.tar.gz instead"
            )
        return obj

    def persistent_load(self, pid: Any) -> Any:
        raise DataError(f"{self.where}: refusing a pickle with persistent ids; not a CIFAR-10 batch")


def restricted_loads(data: bytes, where: str) -> Any:
    """Unpickle ``data`` with :class:`RestrictedUnpickler` (``encoding="bytes"``, as Python 2 pickles need).

    Any failure -- a forbidden global, a truncated or malformed stream -- is a one-line DataError.
    """
    try:
        return RestrictedUnpickler(io.BytesIO(data), where, encoding="bytes").load()
    except DataError:
        raise
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError,
            struct.error, MemoryError) as exc:
        why = f"{type(exc).__name__}: {one_line(exc)}"
        raise DataError(f"{where}: not a readable pickle ({why}); the file is damaged") from None
