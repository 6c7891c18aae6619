"""MNIST and Fashion-MNIST from the original IDX files in ``<root>/mnist/`` and ``<root>/fashion-mnist/``.

The files keep their original names (``train-images-idx3-ubyte.gz`` ...); the uncompressed files
(the same names without ``.gz``) are accepted too. Missing files are downloaded from the public
mirrors when ``data.download`` is true, md5-checked against the published values.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from deconvgan.config import DataConfig
from deconvgan.data.dataset import DATA_ROOT_ENV, ImageDataset, check_memory, keep_first, resolve_data_root
from deconvgan.data.download import MIRRORS, download_file
from deconvgan.data.idx import read_idx_pair
from deconvgan.data.resize import to_geometry
from deconvgan.errors import DataError

IDX_SIDE = 28
NUM_CLASSES = 10
# Fashion-MNIST's class names, in label order (Xiao et al. 2017); MNIST's classes are the digits themselves.
FASHION_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                   "Ankle boot")

# File stems per split: (images, labels).
SPLIT_STEMS = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}

# md5 of the original .gz files, as published (and listed in shared/data/README.md).
MD5 = {
    "mnist": {
        "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
        "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
        "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
        "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
    },
    "fashion-mnist": {
        "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
        "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
        "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
        "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
    },
}


def locate_idx_file(root: Path, dataset: str, stem: str, download: bool) -> Path:
    """``<root>/<dataset>/<stem>.gz`` or the uncompressed ``<stem>``; downloaded if missing and allowed."""
    folder = root / dataset
    for candidate in (folder / f"{stem}.gz", folder / stem):
        if candidate.is_file():
            return candidate
    if download:
        name = f"{stem}.gz"
        return download_file(name, MD5[dataset][name], MIRRORS[dataset], folder)
    raise DataError(
        f"{dataset}: {stem}.gz (or {stem}) not found in {folder}; put the original files there, "
        f"pass --data-root DIR or set {DATA_ROOT_ENV} to the folder holding {dataset}/, "
        "or set data.download=true"
    )


def read_mnist(
    dataset: str,
    split: str,
    root: Path,
    download: bool,
    before_payload: Callable[[int], None] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The raw split of MNIST or Fashion-MNIST: uint8 images ``[N, 28, 28]`` and uint8 labels ``[N]``."""
    if dataset not in MD5:
        raise ValueError(f"not an IDX dataset: {dataset}")
    image_stem, label_stem = SPLIT_STEMS[split]
    images_path = locate_idx_file(root, dataset, image_stem, download)
    labels_path = locate_idx_file(root, dataset, label_stem, download)
    return read_idx_pair(images_path, labels_path, (IDX_SIDE, IDX_SIDE), NUM_CLASSES, before_payload)


def load_mnist(cfg: DataConfig, resolution: int, channels: int) -> ImageDataset:
    """MNIST or Fashion-MNIST (``cfg.source``) at the requested geometry, first ``cfg.max_images`` kept."""
    root = resolve_data_root(cfg.root)
    name = f"{cfg.source}-{cfg.split}"

    def guard(count: int) -> None:
        check_memory(keep_first(count, cfg.max_images), channels, resolution, name)

    images, labels = read_mnist(cfg.source, cfg.split, root, cfg.download, guard)
    n = keep_first(len(images), cfg.max_images)
    x = torch.from_numpy(images[:n]).unsqueeze(1)  # [n, 1, 28, 28], a view of the decoded buffer
    if n < len(images):
        x = x.clone()  # do not keep the whole split alive for a few images
    return ImageDataset(
        images=to_geometry(x, resolution, channels),
        labels=torch.from_numpy(labels[:n].astype(np.int64)),
        name=name,
        num_classes=NUM_CLASSES,
        class_names=FASHION_CLASSES if cfg.source == "fashion-mnist" else None,
    )
