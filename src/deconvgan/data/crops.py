"""Texture data: whole source images at full resolution, and seeded random crops of them.

A texture model (``model.arch: spatial``) learns from one photograph of a material, or a few, by
looking at random ``resolution``-pixel crops. Sources are decoded once at full resolution (a 4096²
photograph is used as it is, not shrunk; ``data.scale`` resamples it first when asked) and kept as
uint8 in memory. Each training step draws its crops from the step's own generator, for the whole
global batch, then takes this process's share, like :class:`~deconvgan.training.batches.RealBatches`,
so the crops do not depend on the number of processes and resume is exact.

Material classes (``model.num_classes > 0``): the folder holds one subfolder per class
(``materials/gravel/*.jpg``, ``materials/leaves/*.jpg``), named and ordered as
:mod:`deconvgan.data.classes` does for whole images; every crop carries the class of its source, and
each class is drawn equally often, whatever its number or size of photographs.
"""

from __future__ import annotations

import contextlib
import warnings
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from deconvgan.config import DataConfig, background_rgb
from deconvgan.data.classes import class_folders
from deconvgan.data.dataset import ImageDataset
from deconvgan.data.folder import IMAGE_EXTENSIONS, RGB, _BadImage, channels_first, list_folder, opened_image
from deconvgan.errors import DataError

TEXTURE_SAMPLE_FILE = "gravel-512.jpg"  # data.source=texture-sample (CC0, see embedded/README.md)


@dataclass(frozen=True, eq=False)
class TextureSources:
    """Decoded source images: ``images[i]`` is uint8 ``[C, H_i, W_i]``; ``name`` labels the data.

    With classes, ``labels`` is int64 ``[len(images)]`` (the class of each source), ``num_classes`` and
    ``class_names`` as in :class:`~deconvgan.data.dataset.ImageDataset`, so that
    :func:`~deconvgan.data.classes.check_classes`, ``class_balance`` and ``names_of_classes`` apply
    (counting source images); without, all three are None.
    """

    images: tuple[torch.Tensor, ...]
    name: str
    labels: torch.Tensor | None = None
    num_classes: int | None = None
    class_names: tuple[str, ...] | None = None

    def __len__(self) -> int:
        return len(self.images)


def _decode_full(path: Path, channels: int, scale: float, background: RGB) -> torch.Tensor:
    with opened_image(path, channels, background=background) as img:
        if scale != 1.0:
            size = (max(1, round(img.width * scale)), max(1, round(img.height * scale)))
            img = img.resize(size, Image.Resampling.LANCZOS)
        pixels = np.asarray(img, dtype=np.uint8)
    return torch.from_numpy(np.array(channels_first(pixels), order="C"))  # a writable copy, [C, H, W]


def _try_decode(path: Path, cfg: DataConfig, channels: int) -> torch.Tensor | None:
    try:
        return _decode_full(path, channels, cfg.scale, background_rgb(cfg.background))
    except _BadImage as exc:
        if not cfg.skip_bad_files:
            raise DataError(f"{path}: {exc}; remove it or pass --skip-bad-files") from None
        warnings.warn(f"{path}: {exc}; skipped", stacklevel=2)
        return None


def texture_paths(cfg: DataConfig, stack: contextlib.ExitStack) -> tuple[list[Path], str]:
    """The source files ``cfg`` names (the embedded sample, one image, or every image under a folder).

    ``stack`` keeps the embedded file available (as a real path) until it closes.
    """
    if cfg.source == "texture-sample":
        sample = resources.files("deconvgan.data").joinpath("embedded", TEXTURE_SAMPLE_FILE)
        return [Path(stack.enter_context(resources.as_file(sample)))], "texture-sample"
    path = Path(str(cfg.path)).expanduser()
    if path.is_file():
        if path.suffix.lower() not in IMAGE_EXTENSIONS:
            raise DataError(f"{path}: not an image file ({' '.join(IMAGE_EXTENSIONS)}); pass an image or a folder")
        return [path], path.name
    if not path.is_dir():
        raise DataError(f"{path}: no such image or folder; pass --data IMAGE_OR_FOLDER")
    images, _ = list_folder(path)
    if not images:
        raise DataError(f"{path}: no images in this folder ({' '.join(IMAGE_EXTENSIONS)})")
    return images, path.name


def class_texture_paths(cfg: DataConfig) -> tuple[list[Path], list[int], tuple[str, ...], str]:
    """``(paths, class of each path, class names, name)`` of a folder of class subfolders (sorted by name).

    A texture sample, a single image, a flat folder or a class subfolder without images is a one-line DataError.
    """
    if cfg.source == "texture-sample" or Path(str(cfg.path)).expanduser().is_file():
        what = "the embedded texture sample" if cfg.source == "texture-sample" else str(cfg.path)
        raise DataError(f"{what} is one photograph without classes, but model.num_classes > 0 asks for classes: "
                        "pass --data FOLDER with one subfolder of photographs per material, or set model.num_classes=0")
    folder = Path(str(cfg.path)).expanduser()
    paths: list[Path] = []
    classes: list[int] = []
    subfolders = class_folders(folder)  # one-line errors for a missing folder, no subfolders, loose images
    for k, sub in enumerate(subfolders):
        found, _ = list_folder(sub)
        if not found:
            raise DataError(f"{sub}: class {sub.name!r} has no images ({' '.join(IMAGE_EXTENSIONS)}); add "
                            "photographs or remove the folder")
        paths += found
        classes += [k] * len(found)
    return paths, classes, tuple(sub.name for sub in subfolders), folder.name


def load_texture_sources(cfg: DataConfig, channels: int, crop: int, *, classes: bool = False) -> TextureSources:
    """Decode the texture sources at full resolution (times ``cfg.scale``) as uint8 ``[C, H, W]``.

    Every source must be at least ``crop`` pixels on both sides (crops smaller than the source are
    the point): a smaller one is a one-line DataError, as is an unreadable file unless
    ``cfg.skip_bad_files``. ``classes``: label each source by its class subfolder (see the module doc).
    """
    images, labels = [], []
    with contextlib.ExitStack() as stack:
        if classes:
            paths, path_classes, class_names, name = class_texture_paths(cfg)
        else:
            (paths, name), path_classes, class_names = texture_paths(cfg, stack), None, None
        decoded = [(path, _try_decode(path, cfg, channels)) for path in paths]
    for i, (path, image) in enumerate(decoded):
        if image is None:
            continue
        h, w = image.shape[1:]
        if min(h, w) < crop:
            raise DataError(f"{path}: {w}x{h} pixels{' after data.scale' if cfg.scale != 1 else ''} is smaller "
                            f"than the {crop}-pixel training crop; lower model.resolution or raise data.scale")
        images.append(image)
        labels.append(path_classes[i] if path_classes is not None else 0)
    if not images:
        raise DataError(f"{cfg.path}: none of the {len(paths)} images could be read")
    if cfg.max_images is not None:
        images, labels = images[:cfg.max_images], labels[:cfg.max_images]
    if class_names is None:
        return TextureSources(tuple(images), name)
    return TextureSources(tuple(images), name, labels=torch.tensor(labels, dtype=torch.int64),
                          num_classes=len(class_names), class_names=class_names)


def load_texture_as_dataset(cfg: DataConfig, resolution: int, channels: int) -> ImageDataset:
    """Texture sources are for texture models: whole-image models get a one-line DataError."""
    raise DataError(f"data.source={cfg.source} is a texture photograph, which only model.arch=spatial trains on "
                    f"(random crops); for {resolution}-pixel whole images give a folder of images")


class RandomCrops:
    """Seeded random crops, float32 in [-1, 1], with optional flips and quarter turns.

    Source ``i`` is chosen with probability proportional to its number of crop positions, so every
    pixel of every source is about equally likely to be seen. ``get(batch_number, gen)`` draws the
    whole global batch from ``gen`` and returns this rank's share ``[b, C, crop, crop]``.

    ``labels`` (int64 ``[S]``, the class of each source; conditional models): each of the ``K`` classes
    is drawn with probability ``1/K``, and within a class a source in proportion to its crop positions
    (still one uniform number per crop, so the draws are those of the unlabelled case);
    :meth:`labels_of` gives the classes of the crops :meth:`get` returned last.
    """

    def __init__(self, sources: TextureSources, crop: int, global_batch: int, device: torch.device, *,
                 rank: int = 0, world_size: int = 1, hflip: bool = False, rot90: bool = False,
                 labels: torch.Tensor | None = None) -> None:
        if global_batch % world_size:
            raise DataError(f"train.batch_size={global_batch} is not divisible by the {world_size} processes: "
                            "make it a multiple")
        self.images = [im.to(device) for im in sources.images]
        self.crop = crop
        self.global_batch, self.batch_per_rank = global_batch, global_batch // world_size
        self.share = slice(rank * self.batch_per_rank, (rank + 1) * self.batch_per_rank)
        self.hflip, self.rot90 = hflip, rot90
        positions = torch.tensor([(im.shape[1] - crop + 1) * (im.shape[2] - crop + 1) for im in sources.images],
                                 dtype=torch.float64)
        weights = positions  # [S]
        self.labels = labels.to(device) if labels is not None else None
        if labels is not None:  # P(source i) = 1/K * its share of its class's positions
            per_class = torch.zeros(int(labels.max()) + 1, dtype=torch.float64).index_add_(0, labels.cpu(), positions)
            weights = positions / per_class[labels.cpu()]
        self.cumulative = (weights.cumsum(0) / weights.sum()).float()  # [S], last = 1
        self._drawn: tuple[int, torch.Tensor] | None = None  # (batch number, source of each crop) of the last get

    def get(self, batch_number: int, gen: torch.Generator) -> torch.Tensor:
        """This rank's crops for one global batch (every draw comes from ``gen``; ``batch_number`` only
        names the batch for :meth:`labels_of`)."""
        n = self.global_batch
        u = torch.rand(n, 5, generator=gen, device=gen.device).cpu()[self.share]  # source, y, x, flip, turn
        which = torch.searchsorted(self.cumulative, u[:, 0].contiguous(), right=True).clamp(max=len(self.images) - 1)
        self._drawn = (batch_number, which)
        crops = []
        for (source, uy, ux, uf, ut) in zip(which.tolist(), *u[:, 1:].T.tolist(), strict=True):
            image = self.images[source]
            top = int(uy * (image.shape[1] - self.crop + 1))
            left = int(ux * (image.shape[2] - self.crop + 1))
            crop = image[:, top:top + self.crop, left:left + self.crop]  # [C, crop, crop]
            if self.hflip and uf < 0.5:
                crop = crop.flip(2)
            if self.rot90:
                crop = torch.rot90(crop, int(ut * 4), dims=(1, 2))
            crops.append(crop)
        return torch.stack(crops).float().div_(127.5).sub_(1.0)

    def labels_of(self, batch_number: int) -> torch.Tensor | None:
        """Class ids ``[b]`` of the crops the last :meth:`get` returned (for ``batch_number``); None unlabelled."""
        if self.labels is None:
            return None
        if self._drawn is None or self._drawn[0] != batch_number:
            raise ValueError(f"labels_of({batch_number}): the last crops drawn were for batch "
                             f"{None if self._drawn is None else self._drawn[0]}; call get() first")
        return self.labels[self._drawn[1].to(self.labels.device)]
