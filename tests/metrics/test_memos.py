"""The library's per-process memos (warnings given, checksums computed) do not leak from one test into the next.

Each pair below repeats the same key in two tests. Without the autouse fixture in tests/conftest.py
that clears the memos, whichever test of a pair ran second would see the first one's entry: no
warning, or a stale checksum. So both orders pass only when the memos are cleared between tests.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from deconvgan.metrics import cache, inception

MESSAGE = "test_memos: the same cache damage in two tests"


@pytest.mark.parametrize("attempt", ["first", "second"])
def test_a_warning_is_given_once_per_test(attempt: str) -> None:
    with pytest.warns(cache.CacheWarning, match="same cache damage"):
        cache._warn_once(MESSAGE)
    cache._warn_once(MESSAGE)  # within a test: remembered (filterwarnings=error would fail on a second warning)


@pytest.fixture
def shared_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One path for every test of the session (a tmp_path would differ per test and hide the leak)."""
    return tmp_path_factory.getbasetemp() / "test_memos-shared.bin"


@pytest.mark.parametrize("content", [b"aaaa", b"bbbb"])
def test_a_checksum_is_computed_afresh_in_each_test(shared_file: Path, content: bytes) -> None:
    shared_file.write_bytes(content)
    os.utime(shared_file, ns=(1, 1))  # same path, size and mtime in both tests: only the content differs
    assert inception.file_sha256(shared_file) == hashlib.sha256(content).hexdigest()
