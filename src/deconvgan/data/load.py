"""``load_dataset``: one entry point from a :class:`~deconvgan.config.DataConfig` to decoded images."""

from __future__ import annotations

from collections.abc import Callable

from deconvgan.config import DATA_SOURCES, DataConfig
from deconvgan.data.cifar import load_cifar10
from deconvgan.data.crops import load_texture_as_dataset
from deconvgan.data.dataset import ImageDataset
from deconvgan.data.embedded import load_digits
from deconvgan.data.folder import load_folder
from deconvgan.data.mnist import load_mnist
from deconvgan.data.stacked import load_stacked_mnist
from deconvgan.errors import DataError

_LOADERS: dict[str, Callable[[DataConfig, int, int], ImageDataset]] = {
    "digits": load_digits,
    "mnist": load_mnist,
    "fashion-mnist": load_mnist,
    "cifar10": load_cifar10,
    "stacked-mnist": load_stacked_mnist,
    "folder": load_folder,
    "texture-sample": load_texture_as_dataset,
}


def data_arg(value: str) -> dict[str, str]:
    """What ``--data VALUE`` means: a standard dataset by name, otherwise a folder of images.

    Returns the ``data`` section keys it sets: ``{"source": "mnist"}`` or ``{"source": "folder", "path": value}``.
    """
    if value in DATA_SOURCES and value != "folder":
        return {"source": value}
    return {"source": "folder", "path": value}


def load_dataset(cfg: DataConfig, resolution: int, channels: int) -> ImageDataset:
    """Decode the whole dataset ``cfg`` describes into uint8 ``[N, channels, resolution, resolution]``.

    Pixels are left in 0..255 and unflipped (the training loop normalises and flips per batch).
    Fixed-size sources are resampled with antialiasing only when ``resolution`` differs from their
    native size; grayscale sources repeat into 3 channels and RGB sources become luma for 1.
    ``cfg.max_images`` keeps the first N images. Bad input raises a one-line DataError.
    """
    if channels not in (1, 3):
        raise DataError(f"channels={channels}: images have 1 (grayscale) or 3 (RGB) channels")
    if resolution < 1:
        raise DataError(f"resolution={resolution} must be a positive number of pixels")
    try:
        loader = _LOADERS[cfg.source]
    except KeyError:
        raise DataError(f"data.source={cfg.source!r} is not one of {', '.join(_LOADERS)}") from None
    return loader(cfg, resolution, channels)
