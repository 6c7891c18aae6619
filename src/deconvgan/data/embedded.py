"""The default ``digits`` source: 1797 8x8 handwritten digits shipped inside the package.

These are the UCI "Optical Recognition of Handwritten Digits" test set (E. Alpaydin and
C. Kaynak, CC BY 4.0), the copy scikit-learn ships as ``load_digits``, stored as gzip IDX files
(produced once by ``tools/make_embedded_digits.py``; see ``embedded/README.md``), so training
works offline on a fresh machine. Pixel values are the original 0..16 counts rescaled to
0..255 by round(v * 255 / 16).

The set has a single split: ``data.split=test`` is refused rather than silently returning the
same images as ``train``.
"""

from __future__ import annotations

from importlib import resources

import numpy as np
import torch

from deconvgan.config import DataConfig
from deconvgan.data.dataset import ImageDataset, check_memory, keep_first
from deconvgan.data.idx import read_idx_pair
from deconvgan.data.resize import to_geometry
from deconvgan.errors import DataError

DIGITS_IMAGES = "digits-images-idx3-ubyte.gz"
DIGITS_LABELS = "digits-labels-idx1-ubyte.gz"
DIGITS_SIDE = 8
DIGITS_COUNT = 1797
NUM_CLASSES = 10


def load_digits(cfg: DataConfig, resolution: int, channels: int) -> ImageDataset:
    """The embedded digits at the requested geometry (bilinear upsampling from 8x8)."""
    if cfg.split != "train":
        raise DataError(
            f"data.source=digits has a single split ({DIGITS_COUNT} images, all used for training); "
            "set data.split=train, or use data.source=mnist for a separate test split"
        )

    def guard(count: int) -> None:
        check_memory(keep_first(count, cfg.max_images), channels, resolution, "digits")

    folder = resources.files("deconvgan.data").joinpath("embedded")
    with resources.as_file(folder.joinpath(DIGITS_IMAGES)) as images_path, \
            resources.as_file(folder.joinpath(DIGITS_LABELS)) as labels_path:
        if not images_path.is_file() or not labels_path.is_file():
            raise DataError(
                f"the embedded digits ({images_path.name}) are missing from the installed package at "
                f"{images_path.parent}; reinstall deconvgan"
            )
        side = (DIGITS_SIDE, DIGITS_SIDE)
        images, labels = read_idx_pair(images_path, labels_path, side, NUM_CLASSES, guard)
    n = keep_first(len(images), cfg.max_images)
    x = torch.from_numpy(images[:n].copy()).unsqueeze(1)  # [n, 1, 8, 8]
    return ImageDataset(
        images=to_geometry(x, resolution, channels),
        labels=torch.from_numpy(labels[:n].astype(np.int64)),
        name="digits",
        num_classes=NUM_CLASSES,
    )
