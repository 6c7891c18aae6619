"""Class labels from data: a folder's first-level subfolders, checks against the model, the class balance.

A labelled folder holds one subfolder per class (``photos/cat/*.png``, ``photos/dog/*.jpg``): class ``k``
is the ``k``-th subfolder name in sorted order, its images everything under that subfolder (read as
:func:`~deconvgan.data.folder.load_folder` reads a folder). Hidden entries are skipped. An image lying
directly in the top folder, a class subfolder without images, or a folder without subfolders is a
one-line DataError.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch

from deconvgan.config import DataConfig
from deconvgan.data.dataset import ImageDataset, keep_first, names_of_classes
from deconvgan.data.folder import IMAGE_EXTENSIONS, load_folder
from deconvgan.errors import DataError

_BALANCE_LISTED = 20  # classes listed one by one in the balance line; more are summarised


def class_folders(folder: Path) -> list[Path]:
    """The class subfolders of ``folder`` (non-hidden, sorted by name); DataError if there are none
    or an image lies at the top level."""
    if not folder.is_dir():
        raise DataError(f"{folder}: image folder not found; check data.path (--data)")
    entries = sorted(p for p in folder.iterdir() if not p.name.startswith("."))
    loose = [p for p in entries if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS]
    subfolders = [p for p in entries if p.is_dir()]
    if not subfolders:
        raise DataError(f"{folder}: model.num_classes > 0 asks for classes, but the folder has no subfolders; "
                        "put each class's images in a subfolder named after it, or set model.num_classes=0")
    if loose:
        raise DataError(f"{loose[0]}: an image outside the class subfolders of {folder}; move it into the "
                        "subfolder of its class")
    return subfolders


def load_class_folders(cfg: DataConfig, resolution: int, channels: int) -> ImageDataset:
    """Every image under ``cfg.path``'s class subfolders, labelled by subfolder (see the module doc).

    ``cfg.max_images`` keeps the first N images in path order (class by class), as for a flat folder.
    """
    if not cfg.path:
        raise DataError("data.source=folder needs data.path (the image folder): pass --data PATH")
    folder = Path(cfg.path).expanduser()
    images, labels, names = [], [], []
    for index, sub in enumerate(class_folders(folder)):
        try:
            part = load_folder(dataclasses.replace(cfg, path=str(sub), max_images=None), resolution, channels)
        except DataError as exc:
            if "no images found" in str(exc):
                raise DataError(f"{sub}: class {sub.name!r} has no images; add images or remove the folder") from None
            raise
        images.append(part.images)
        labels.append(torch.full((len(part),), index, dtype=torch.int64))
        names.append(sub.name)
    x, y = torch.cat(images), torch.cat(labels)
    n = keep_first(len(x), cfg.max_images)
    x, y = x[:n].contiguous(), y[:n].contiguous()
    empty = [names[k] for k in range(len(names)) if not (y == k).any()]
    if empty:
        raise DataError(f"{folder}: data.max_images={cfg.max_images} leaves class {empty[0]!r} without images; "
                        "raise it or leave it unset")
    return ImageDataset(images=x, labels=y, name=f"folder:{folder}", num_classes=len(names),
                        class_names=tuple(names))


def check_classes(dataset: ImageDataset, num_classes: int) -> None:
    """DataError unless ``dataset`` has labels for exactly ``num_classes`` classes, each with an image."""
    if dataset.labels is None or not dataset.num_classes:
        raise DataError(f"data {dataset.name} has no class labels, but model.num_classes={num_classes}: train a "
                        "labelled source (mnist, fashion-mnist, stacked-mnist, cifar10, digits, a folder of class "
                        "subfolders) or set model.num_classes=0")
    if dataset.num_classes != num_classes:
        raise DataError(f"data {dataset.name} has {dataset.num_classes} classes, the model "
                        f"model.num_classes={num_classes}: set model.num_classes={dataset.num_classes}")
    counts = torch.bincount(dataset.labels, minlength=num_classes)
    if (counts == 0).any():
        empty = names_of_classes(dataset)[int((counts == 0).nonzero()[0])]
        raise DataError(f"data {dataset.name}: class {empty!r} has no images (of {len(dataset)}); give it images, "
                        "or raise data.max_images")


def class_balance(dataset: ImageDataset) -> str:
    """One line: images per class (``0: 5923, 1: 6742, ...``), summarised beyond 20 classes."""
    if dataset.labels is None or not dataset.num_classes:
        return "no labels"
    counts = torch.bincount(dataset.labels, minlength=dataset.num_classes).tolist()
    names = names_of_classes(dataset)
    if len(counts) <= _BALANCE_LISTED:
        return ", ".join(f"{name}: {count}" for name, count in zip(names, counts, strict=True))
    low, high = min(range(len(counts)), key=counts.__getitem__), max(range(len(counts)), key=counts.__getitem__)
    return (f"{len(counts)} classes, {sum(c > 0 for c in counts)} with images; fewest {counts[low]} "
            f"({names[low]}), most {counts[high]} ({names[high]}), mean {sum(counts) / len(counts):.1f}")
