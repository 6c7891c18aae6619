"""Atomic file writes: a crash mid-write never leaves a broken file where a good one was.

Everything is written to a temporary file in the destination's folder, flushed to disk, then
moved over the destination with ``os.replace`` (atomic on POSIX and Windows), and the folder is
fsynced so the rename itself survives a power cut. A write that fails (disk full, permission denied)
leaves the destination as it was and raises :class:`~deconvgan.errors.OutputError`, one line naming
the path and the cause. A process killed mid-write leaves its hidden temporary file
(``.NAME.XXXXXXXX.tmp``); :func:`remove_stale_temporaries` clears them when a run starts again.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from deconvgan.errors import OutputError

# Failures of the write itself (not of whatever produces the bytes): these become one-line OutputErrors.
_WRITE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EPERM, errno.EROFS, errno.EIO, errno.EFBIG,
                 errno.ENOENT, errno.EISDIR, errno.ENOTDIR, errno.ENAMETOOLONG}
_TEMPORARY = re.compile(r"^\..+\.[A-Za-z0-9_]{8}\.tmp$")  # what mkstemp(prefix=".NAME.", suffix=".tmp") names


def _read_umask() -> int:
    mask = os.umask(0)  # the only portable way to read it: set and restore, once at import
    os.umask(mask)
    return mask


_UMASK = _read_umask()


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it replaces ``path`` atomically.

    On any exception the temporary file is removed and ``path`` is left as it was; an ``OSError``
    (disk full, permission denied, ...) becomes a one-line :class:`~deconvgan.errors.OutputError`.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise _output_error(path, exc) from None
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        # mkstemp makes the file owner-only (0600), and a writer may have recreated it (safetensors
        # does): the result gets the permissions any new file gets, whatever wrote it.
        with contextlib.suppress(OSError):
            os.chmod(tmp, 0o666 & ~_UMASK)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        if isinstance(exc, OutputError) or exc.errno not in _WRITE_ERRNOS:  # e.g. a download writer's HTTP error
            raise
        raise _output_error(path, exc) from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def _output_error(path: Path, exc: OSError) -> OutputError:
    cause = exc.strerror or str(exc) or type(exc).__name__
    fix = {errno.ENOSPC: "free some space", errno.EDQUOT: "free some space (quota)",
           errno.EACCES: "fix the folder's permissions", errno.EPERM: "fix the folder's permissions",
           errno.EROFS: "write to a writable file system"}.get(exc.errno or 0, "fix the cause")
    return OutputError(f"{path}: could not write it ({cause}); the previous version, if any, is intact: {fix} "
                       "and try again")


def remove_stale_temporaries(folder: str | Path) -> list[Path]:
    """Delete the temporary files that writes killed mid-way left in ``folder`` (not recursive).

    Call it only where no other process is writing (a run directory when its run starts).
    Returns the paths removed.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    removed = []
    for child in folder.iterdir():
        if _TEMPORARY.match(child.name) and child.is_file():
            with contextlib.suppress(FileNotFoundError):
                child.unlink()
                removed.append(child)
    return sorted(removed)


def _fsync_dir(folder: Path) -> None:
    # Makes the rename itself durable; not possible (nor needed) on Windows.
    with contextlib.suppress(OSError, AttributeError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def write_bytes(path: str | Path, data: bytes) -> None:
    """Atomically replace ``path`` with ``data``."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_text(path: str | Path, text: str) -> None:
    """Atomically replace ``path`` with UTF-8 ``text``."""
    write_bytes(path, text.encode("utf-8"))


def write_with(path: str | Path, writer: Callable[[Path], None]) -> None:
    """Atomically replace ``path`` with whatever ``writer(tmp_path)`` writes."""
    with atomic_path(path) as tmp:
        writer(tmp)
