"""Downloads against a local HTTP server: mirror fallback, md5 check, atomic write, end to end."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

import deconvgan.data.download as download_module
import deconvgan.data.mnist as mnist_module
from deconvgan.config import DataConfig
from deconvgan.data import load_dataset
from deconvgan.data.download import MIRRORS, download_file, md5_of
from deconvgan.errors import DataError

from .conftest import one_line_message, write_mnist_like


def test_first_good_mirror_wins(http_dir: tuple[Path, str], tmp_path: Path) -> None:
    served, url = http_dir
    (served / "good").mkdir()
    payload = b"some dataset bytes" * 1000
    (served / "good" / "file.bin").write_bytes(payload)
    dest = tmp_path / "root" / "mnist"
    got = download_file("file.bin", hashlib.md5(payload).hexdigest(), [url + "missing/", url + "good/"], dest)
    assert got == dest / "file.bin" and got.read_bytes() == payload
    assert md5_of(got) == hashlib.md5(payload).hexdigest()
    assert sorted(p.name for p in dest.iterdir()) == ["file.bin"]  # no temporary file left behind


def test_md5_mismatch_is_refused(http_dir: tuple[Path, str], tmp_path: Path) -> None:
    served, url = http_dir
    (served / "file.bin").write_bytes(b"tampered")
    dest = tmp_path / "root"
    with pytest.raises(DataError, match="md5 mismatch") as exc:
        download_file("file.bin", "0" * 32, [url + "nowhere/", url], dest)
    one_line_message(exc, "HTTP 404", url + "file.bin", url + "nowhere/file.bin", str(dest), "DECONVGAN_DATA_ROOT")
    assert list(dest.iterdir()) == []  # neither the bad file nor a temporary remains


def test_unreachable_mirror_reports_why(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="could not download x.gz: tried file://"):
        download_file("x.gz", "0" * 32, [f"file://{tmp_path}/absent/"], tmp_path / "dest")


def test_mnist_is_downloaded_when_missing(
    http_dir: tuple[Path, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    served, url = http_dir
    images = np.random.default_rng(1).integers(0, 256, (4, 28, 28))
    write_mnist_like(served, images, np.array([3, 1, 4, 1]), split="test")
    md5s = {p.name: md5_of(p) for p in served.iterdir()}
    monkeypatch.setitem(MIRRORS, "mnist", (url + "dead/", url))
    monkeypatch.setitem(mnist_module.MD5, "mnist", md5s)
    root = tmp_path / "root"
    ds = load_dataset(DataConfig(source="mnist", split="test", root=str(root), download=True), 28, 1)
    np.testing.assert_array_equal(ds.images[:, 0].numpy(), images)
    assert sorted(p.name for p in (root / "mnist").iterdir()) == sorted(md5s)
    # A second load reads the local copies: the server is no longer needed.
    monkeypatch.setitem(MIRRORS, "mnist", ())
    again = load_dataset(DataConfig(source="mnist", split="test", root=str(root), download=True), 28, 1)
    assert again.images.shape == (4, 1, 28, 28)


def test_mnist_download_with_wrong_md5_fails(
    http_dir: tuple[Path, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    served, url = http_dir
    write_mnist_like(served, np.zeros((2, 28, 28)), np.zeros(2), split="test")
    monkeypatch.setitem(MIRRORS, "mnist", (url,))  # the published md5 values cannot match these files
    with pytest.raises(DataError, match="could not download t10k-images-idx3-ubyte.gz.*md5 mismatch"):
        load_dataset(DataConfig(source="mnist", split="test", root=str(tmp_path / "r"), download=True), 28, 1)


def test_read_only_destination_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Simulated: this test may run as root, for whom directory permissions are not enforced.
    monkeypatch.setattr(download_module.os, "access", lambda path, mode: False)
    with pytest.raises(DataError, match="cannot write to .*DECONVGAN_DATA_ROOT") as exc:
        download_file("x.gz", "0" * 32, ["file:///nonexistent/"], tmp_path)
    assert str(tmp_path) in str(exc.value)
