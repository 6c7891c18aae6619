"""The in-memory dataset every source produces, the data root, and the memory guard."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch

from deconvgan.errors import DataError

DATA_ROOT_ENV = "DECONVGAN_DATA_ROOT"
DEFAULT_DATA_ROOT = Path("~/.cache/deconvgan/data")
# Refuse datasets larger than this fraction of MemAvailable: training needs room for the model,
# the optimiser state and the per-batch float copies on top of the uint8 images.
MEMORY_FRACTION = 0.5


@dataclass(frozen=True, eq=False)  # eq=False: comparing tensors with == has no single truth value
class ImageDataset:
    """Decoded training images, ready for the training loop to index.

    ``images`` is uint8 ``[N, C, H, W]`` (contiguous, H = W = resolution), *not* normalised and
    not flipped: the training loop maps each batch to [-1, 1] and applies flips itself.
    ``labels`` is int64 ``[N]`` (class ids) or None when the source has no labels (flat folders).
    ``class_names`` names classes ``0..num_classes-1`` where the source has names (folder subfolders,
    Fashion-MNIST); None means the ids themselves ("0", "1", ...), see :func:`names_of_classes`.
    """

    images: torch.Tensor
    labels: torch.Tensor | None
    name: str
    num_classes: int | None
    class_names: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if self.images.dtype != torch.uint8 or self.images.dim() != 4:
            got = f"{self.images.dtype} {tuple(self.images.shape)}"
            raise ValueError(f"images must be uint8 [N, C, H, W], got {got}")
        if not self.images.is_contiguous():
            raise ValueError("images must be contiguous")
        labels = self.labels
        if labels is not None and (labels.dtype != torch.int64 or labels.shape != self.images.shape[:1]):
            raise ValueError(f"labels must be int64 [{self.images.shape[0]}], got {labels.dtype} "
                             f"{tuple(labels.shape)}")

    def __len__(self) -> int:
        return int(self.images.shape[0])


def names_of_classes(dataset: ImageDataset) -> tuple[str, ...]:
    """The dataset's class names, or its class ids as strings; () when it has no labels."""
    if dataset.labels is None or not dataset.num_classes:
        return ()
    return dataset.class_names or tuple(str(i) for i in range(dataset.num_classes))


def resolve_data_root(cfg_root: str | None) -> Path:
    """Where standard datasets live: ``cfg_root``, else $DECONVGAN_DATA_ROOT, else ~/.cache/deconvgan/data.

    A leading ``~`` is expanded; the folder is not created here (downloads create it when needed).
    """
    if cfg_root:
        return Path(cfg_root).expanduser()
    env = os.environ.get(DATA_ROOT_ENV)
    if env:
        return Path(env).expanduser()
    return DEFAULT_DATA_ROOT.expanduser()


def available_memory() -> int | None:
    """MemAvailable from /proc/meminfo in bytes, or None where that file is absent or unreadable."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024  # the value is in kB
    except (OSError, ValueError, IndexError):
        return None
    return None


def check_memory(count: int, channels: int, resolution: int, what: str) -> None:
    """Raise DataError if ``count`` uint8 images of ``channels x resolution^2`` would not fit comfortably.

    Called before decoding, so a too-large request fails in a second instead of swapping or being
    killed half-way through. Skipped when the available memory cannot be read.
    """
    available = available_memory()
    if available is None:
        return
    per_image = channels * resolution * resolution
    need = count * per_image
    limit = int(available * MEMORY_FRACTION)
    if need > limit:
        fits = max(1, limit // per_image)
        raise DataError(
            f"{what}: {count} images of {channels}x{resolution}x{resolution} need {need / 2**30:.1f} GiB, "
            f"more than half the available memory ({available / 2**30:.1f} GiB); "
            f"set data.max_images={fits} or less, or lower model.resolution"
        )


def one_line(text: object) -> str:
    """Collapse whitespace (newlines from library exceptions included) so messages stay one line."""
    return " ".join(str(text).split())


def keep_first(count: int, max_images: int | None) -> int:
    """How many images to keep of ``count`` under ``data.max_images`` (the first N)."""
    return count if max_images is None else min(count, max_images)
