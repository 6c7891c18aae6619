"""Images inside a ``.tar``/``.tar.gz``/``.tgz``/``.tar.bz2``/``.tar.xz`` or ``.zip`` archive (``--data FILE``).

Read in memory, never extracted: no member path reaches the file system, so names like
``../../etc/x`` or absolute paths are harmless. Regular files only (links, devices and folders
are ignored); hidden members (any path part starting with '.') and macOS resource forks
(``__MACOSX/``) are skipped as in a folder. Members are taken in the order of their names. The
total uncompressed size is checked against available memory before anything is read, so a
compression bomb fails in a second with a one-line DataError.
"""

from __future__ import annotations

import tarfile
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from deconvgan.data.dataset import available_memory, one_line
from deconvgan.errors import DataError

ARCHIVE_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz", ".zip")
_MEMORY_FRACTION = 0.25  # of MemAvailable: the raw bytes sit beside the decoded images for a moment


@dataclass(frozen=True)
class Member:
    """One file of an archive: its path inside the archive and its bytes."""

    name: str
    data: bytes


def is_archive(path: Path) -> bool:
    """True for a file whose name ends in one of :data:`ARCHIVE_SUFFIXES`."""
    return path.is_file() and path.name.lower().endswith(ARCHIVE_SUFFIXES)


def _visible(name: str) -> bool:
    parts = PurePosixPath(name).parts
    return bool(parts) and not any(p.startswith(".") or p == "__MACOSX" for p in parts)


def _check_size(path: Path, total: int) -> None:
    available = available_memory()
    if available is not None and total > available * _MEMORY_FRACTION:
        raise DataError(f"{path}: its files hold {total / 2**30:.1f} GiB uncompressed, more than a quarter of the "
                        f"available memory ({available / 2**30:.1f} GiB); extract it and pass the folder")


def read_archive(path: Path) -> list[Member]:
    """Every visible regular file of the archive at ``path``, sorted by name (see the module doc)."""
    try:
        if path.name.lower().endswith(".zip"):
            with zipfile.ZipFile(path) as zf:
                infos = [i for i in zf.infolist() if not i.is_dir() and _visible(i.filename)]
                _check_size(path, sum(i.file_size for i in infos))
                members = [Member(i.filename.lstrip("/"), zf.read(i)) for i in infos]
        else:
            with tarfile.open(path) as tf:
                infos = [i for i in tf.getmembers() if i.isreg() and _visible(i.name)]
                _check_size(path, sum(i.size for i in infos))
                members = []
                for info in infos:
                    handle = tf.extractfile(info)
                    assert handle is not None  # a regular member always has data
                    members.append(Member(info.name.lstrip("/"), handle.read()))  # '/x' names no absolute path
    except (tarfile.TarError, zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError,
            zlib.error) as exc:
        raise DataError(f"{path}: cannot read the archive ({type(exc).__name__}: {one_line(exc)}); check the file, "
                        "or extract it and pass the folder") from None
    return sorted(members, key=lambda m: PurePosixPath(m.name).parts)
