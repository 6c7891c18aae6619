"""ImageDataset invariants, the data root's precedence and the memory guard."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from deconvgan.config import DataConfig
from deconvgan.data import ImageDataset, load_dataset, resolve_data_root
from deconvgan.data import dataset as dataset_module
from deconvgan.data.dataset import available_memory, check_memory
from deconvgan.errors import DataError


def test_resolve_data_root_precedence(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("DECONVGAN_DATA_ROOT", raising=False)
    assert resolve_data_root(None) == tmp_path / "home" / ".cache" / "deconvgan" / "data"
    monkeypatch.setenv("DECONVGAN_DATA_ROOT", str(tmp_path / "env"))
    assert resolve_data_root(None) == tmp_path / "env"
    assert resolve_data_root(str(tmp_path / "cfg")) == tmp_path / "cfg"
    assert resolve_data_root("~/x") == tmp_path / "home" / "x"


def test_image_dataset_checks_its_tensors() -> None:
    images = torch.zeros(2, 1, 8, 8, dtype=torch.uint8)
    ds = ImageDataset(images, torch.tensor([0, 1]), "t", 10)
    assert len(ds) == 2
    with pytest.raises(ValueError, match=r"images must be uint8 \[N, C, H, W\], got torch.float32"):
        ImageDataset(images.float(), None, "t", None)
    with pytest.raises(ValueError, match=r"labels must be int64 \[2\], got torch.int32"):
        ImageDataset(images, torch.tensor([0, 1], dtype=torch.int32), "t", 10)
    with pytest.raises(ValueError, match="must be contiguous"):
        ImageDataset(images.transpose(2, 3), None, "t", None)


@pytest.mark.parametrize(("text", "expected"), [
    ("MemTotal:       16000000 kB\nMemFree:  100 kB\nMemAvailable:    1234567 kB\nBuffers: 5 kB\n", 1234567 * 1024),
    ("MemTotal:       16000000 kB\nMemFree:  100 kB\n", None),  # kernels before 3.14 have no MemAvailable
    ("MemAvailable: lots\n", None),
])
def test_available_memory_reads_meminfo(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, text: str,
                                        expected: int | None) -> None:
    fake = tmp_path / "meminfo"
    fake.write_text(text)
    real_open = open
    monkeypatch.setattr("builtins.open", lambda file, *a, **k: real_open(
        fake if file == "/proc/meminfo" else file, *a, **k))
    assert available_memory() == expected  # bytes: the file's kB times 1024
    fake.unlink()
    assert available_memory() is None  # no such file (not Linux)


def test_check_memory_suggests_max_images(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dataset_module, "available_memory", lambda: 2 * 1000 * 3 * 64 * 64)
    check_memory(1000, 3, 64, "x")  # exactly half: fits
    fix = r"set data\.max_images=1000 or less, or lower model\.resolution"
    with pytest.raises(DataError, match=fix) as exc:
        check_memory(1001, 3, 64, "my-set")
    assert "my-set" in str(exc.value) and "\n" not in str(exc.value)
    monkeypatch.setattr(dataset_module, "available_memory", lambda: None)
    check_memory(10**9, 3, 1024, "x")  # unknown memory: no check


def test_memory_guard_stops_a_load_before_decoding(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dataset_module, "available_memory", lambda: 1000)
    with pytest.raises(DataError, match="max_images"):
        load_dataset(DataConfig(source="digits"), 16, 1)


def test_load_dataset_checks_geometry() -> None:
    with pytest.raises(DataError, match="channels=2"):
        load_dataset(DataConfig(), 16, 2)
