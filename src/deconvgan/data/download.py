"""Fetching standard dataset files from their public mirrors: urllib only, md5-checked, atomic.

A file is streamed into a hidden temporary file beside its destination, hashed on the way, and
moved into place with ``os.replace`` only when the md5 matches, so an interrupted or corrupted
download never leaves a half-written file under the real name.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import sys
import tempfile
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path

from deconvgan.data.dataset import DATA_ROOT_ENV, one_line
from deconvgan.errors import DataError

# Base URLs tried in order for each dataset (the file name is appended). Tests replace these.
MIRRORS: dict[str, tuple[str, ...]] = {
    "mnist": (
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "http://yann.lecun.com/exdb/mnist/",
    ),
    "fashion-mnist": ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
    "cifar10": ("https://www.cs.toronto.edu/~kriz/",),
}

_CHUNK = 1 << 20
TIMEOUT_SECONDS = 60.0


def md5_of(path: Path) -> str:
    """Hex md5 of a file, read in 1 MiB chunks."""
    digest = hashlib.md5()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _fetch(url: str, md5: str, target: Path) -> str | None:
    """Download ``url`` to ``target`` if its md5 matches; return None on success, else why not."""
    try:
        fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    except OSError as exc:
        return f"cannot create a temporary file in {target.parent}: {one_line(exc.strerror or exc)}"
    tmp = Path(tmp_name)
    try:
        digest = hashlib.md5()
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=TIMEOUT_SECONDS) as response:
            while chunk := response.read(_CHUNK):
                digest.update(chunk)
                out.write(chunk)
        got = digest.hexdigest()
        if got != md5:
            return f"md5 mismatch (got {got}, expected {md5})"
        os.replace(tmp, target)  # atomic on one file system: the real name only ever holds a checked file
        return None
    except urllib.error.HTTPError as exc:
        return f"HTTP {exc.code} {one_line(exc.reason)}"
    except (OSError, http.client.HTTPException, ValueError) as exc:
        reason = getattr(exc, "reason", None)  # URLError wraps the socket error in .reason
        return f"{type(exc).__name__}: {one_line(reason if reason is not None else exc)}"
    finally:
        tmp.unlink(missing_ok=True)


def download_file(name: str, md5: str, mirrors: Sequence[str], dest_dir: Path) -> Path:
    """Fetch ``name`` from the first mirror that serves it with the right md5 into ``dest_dir``.

    Raises DataError listing every URL tried and why it failed, and where to put the file by hand.
    """
    try:
        dest_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(
            f"cannot create {dest_dir} to download {name} ({exc.strerror or exc}); "
            f"pass --data-root DIR or set {DATA_ROOT_ENV} to a writable directory"
        ) from None
    if not os.access(dest_dir, os.W_OK | os.X_OK):
        raise DataError(
            f"cannot write to {dest_dir} to download {name}; put the file there by hand, or pass "
            f"--data-root DIR / set {DATA_ROOT_ENV} to a writable directory"
        )
    target = dest_dir / name
    failures = []
    for base in mirrors:
        url = base + name
        print(f"deconvgan: downloading {url} -> {target}", file=sys.stderr, flush=True)
        why = _fetch(url, md5, target)
        if why is None:
            return target
        failures.append(f"{url} ({why})")
    raise DataError(
        f"could not download {name}: tried {'; '.join(failures) or 'no mirrors'}; "
        f"put the file in {dest_dir} by hand, or pass --data-root DIR / set {DATA_ROOT_ENV} "
        "to the folder where you have it"
    )
