"""Shared fixtures: tiny configs and synthetic datasets so training tests run in seconds on a CPU."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from deconvgan.config import Config
from deconvgan.configio import load_config
from deconvgan.data import ImageDataset


def _find_shared_data() -> Path | None:
    # The repository's sibling shared/ (CI clones with shared/ beside the work tree), else the usual place.
    for candidate in (Path(__file__).resolve().parents[2] / "shared" / "data", Path("/work/shared/data")):
        if (candidate / "mnist" / "train-images-idx3-ubyte.gz").is_file():
            return candidate
    return None


SHARED_DATA = _find_shared_data()


@pytest.fixture(scope="session")
def shared_root() -> Path:
    """The folder holding mnist/ and fashion-mnist/ with the original files (../shared/data); skips if absent."""
    if SHARED_DATA is None:
        pytest.skip("shared/data with the original MNIST files is not present on this machine")
    return SHARED_DATA


def tiny_config(tmp_path: Path, *overrides: str) -> Config:
    """A 16x16 grayscale DCGAN small enough to train a few steps in well under a second."""
    return load_config(None, [
        "name=tiny",
        f"run.runs_dir={tmp_path / 'runs'}",
        "model.resolution=16", "model.latent_dim=8", "model.g_width=8", "model.d_width=8", "model.max_width=16",
        "train.batch_size=8", "train.phases=[{steps: 6}]", "train.ema_halflife_kimg=0.05",
        "run.progress=false", "run.tensorboard=false", "run.grid_size=4",
        "run.log_every_kimg=0.016", "run.sample_every_kimg=0.024", "run.snapshot_every_kimg=0.024",
        "run.device=cpu",
        *overrides,
    ])


def blob_images(n: int = 48, channels: int = 1, resolution: int = 16, seed: int = 0) -> torch.Tensor:
    """uint8 [n, C, R, R] images of bright squares at random places: structured, cheap, seeded."""
    gen = torch.Generator().manual_seed(seed)
    images = torch.zeros(n, channels, resolution, resolution, dtype=torch.uint8)
    corners = torch.randint(0, resolution - 4, (n, 2), generator=gen)
    for i, (y, x) in enumerate(corners.tolist()):
        images[i, :, y:y + 4, x:x + 4] = 255
    return images


@pytest.fixture
def blobs() -> ImageDataset:
    return ImageDataset(images=blob_images(), labels=None, name="blobs", num_classes=None)


@pytest.fixture
def make_config(tmp_path):
    """``make_config(*overrides)``: a tiny config writing under this test's tmp_path."""
    return lambda *overrides: tiny_config(tmp_path, *overrides)


@pytest.fixture(autouse=True)
def _forget_process_memos() -> None:
    """Every test starts with the library's per-process memos empty, so no test depends on which ran first.

    The memos: warnings already given (metrics.cache) and file checksums already computed (metrics.inception).
    """
    from deconvgan.metrics import cache, inception

    cache._warn_once.cache_clear()
    inception._sha256_of_version.cache_clear()
