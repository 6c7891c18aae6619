"""Fetching standard dataset files from their public mirrors: urllib only, md5-checked, atomic.

A file is streamed into a hidden temporary file beside its destination (:func:`deconvgan.atomic.atomic_path`),
hashed on the way, and moved into place only when the md5 matches, so an interrupted or corrupted
download never leaves a half-written file under the real name.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import sys
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path

from deconvgan.atomic import atomic_path
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


class _Md5Mismatch(Exception):
    """Raised inside the atomic write so the temporary file is dropped and the target left alone."""


def _fetch(url: str, md5: str, target: Path) -> str | None:
    """Download ``url`` to ``target`` if its md5 matches; return None on success, else why not."""
    try:
        # The real name only ever holds a checked file: any failure (a mismatch included) removes the temporary.
        with atomic_path(target) as tmp:
            digest = hashlib.md5()
            with open(tmp, "wb") as out, urllib.request.urlopen(url, timeout=TIMEOUT_SECONDS) as response:
                while chunk := response.read(_CHUNK):
                    digest.update(chunk)
                    out.write(chunk)
            got = digest.hexdigest()
            if got != md5:
                raise _Md5Mismatch(f"md5 mismatch (got {got}, expected {md5})")
        return None
    except _Md5Mismatch as exc:
        return str(exc)
    except urllib.error.HTTPError as exc:
        return f"HTTP {exc.code} {one_line(exc.reason)}"
    except (OSError, http.client.HTTPException, ValueError) as exc:
        reason = getattr(exc, "reason", None)  # URLError wraps the socket error in .reason
        return f"{type(exc).__name__}: {one_line(reason if reason is not None else exc)}"


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
