"""Texture data: whole source images at full resolution, and seeded random crops of them.

A texture model (``model.arch: spatial``) learns from one photograph of a material, or a few, by
looking at random ``resolution``-pixel crops. Sources are decoded once at full resolution (a 4096²
photograph is used as it is, not shrunk; ``data.scale`` resamples it first when asked) and kept as
uint8 in memory. Each training step draws its crops from the step's own generator, for the whole
global batch, then takes this process's share, like :class:`~deconvgan.training.batches.RealBatches`,
so the crops do not depend on the number of processes and resume is exact.
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

from deconvgan.config import DataConfig
from deconvgan.data.dataset import ImageDataset
from deconvgan.data.folder import IMAGE_EXTENSIONS, _BadImage, channels_first, list_folder, opened_image
from deconvgan.errors import DataError

TEXTURE_SAMPLE_FILE = "gravel-512.jpg"  # data.source=texture-sample (CC0, see embedded/README.md)


@dataclass(frozen=True, eq=False)
class TextureSources:
    """Decoded source images: ``images[i]`` is uint8 ``[C, H_i, W_i]``; ``name`` labels the data."""

    images: tuple[torch.Tensor, ...]
    name: str

    def __len__(self) -> int:
        return len(self.images)


def _decode_full(path: Path, channels: int, scale: float) -> torch.Tensor:
    with opened_image(path, channels) as img:
        if scale != 1.0:
            size = (max(1, round(img.width * scale)), max(1, round(img.height * scale)))
            img = img.resize(size, Image.Resampling.LANCZOS)
        pixels = np.asarray(img, dtype=np.uint8)
    return torch.from_numpy(np.array(channels_first(pixels), order="C"))  # a writable copy, [C, H, W]


def _try_decode(path: Path, channels: int, scale: float, skip_bad_files: bool) -> torch.Tensor | None:
    try:
        return _decode_full(path, channels, scale)
    except _BadImage as exc:
        if not skip_bad_files:
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


def load_texture_sources(cfg: DataConfig, channels: int, crop: int) -> TextureSources:
    """Decode the texture sources at full resolution (times ``cfg.scale``) as uint8 ``[C, H, W]``.

    Every source must be at least ``crop`` pixels on both sides (crops smaller than the source are
    the point): a smaller one is a one-line DataError, as is an unreadable file unless
    ``cfg.skip_bad_files``.
    """
    images = []
    with contextlib.ExitStack() as stack:
        paths, name = texture_paths(cfg, stack)
        decoded = [(path, _try_decode(path, channels, cfg.scale, cfg.skip_bad_files)) for path in paths]
    for path, image in decoded:
        if image is None:
            continue
        h, w = image.shape[1:]
        if min(h, w) < crop:
            raise DataError(f"{path}: {w}x{h} pixels{' after data.scale' if cfg.scale != 1 else ''} is smaller "
                            f"than the {crop}-pixel training crop; lower model.resolution or raise data.scale")
        images.append(image)
    if not images:
        raise DataError(f"{cfg.path}: none of the {len(paths)} images could be read")
    if cfg.max_images is not None:
        images = images[:cfg.max_images]
    return TextureSources(tuple(images), name)


def load_texture_as_dataset(cfg: DataConfig, resolution: int, channels: int) -> ImageDataset:
    """Texture sources are for texture models: whole-image models get a one-line DataError."""
    raise DataError(f"data.source={cfg.source} is a texture photograph, which only model.arch=spatial trains on "
                    f"(random crops); for {resolution}-pixel whole images give a folder of images")


class RandomCrops:
    """Seeded random crops, float32 in [-1, 1], with optional flips and quarter turns.

    Source ``i`` is chosen with probability proportional to its number of crop positions, so every
    pixel of every source is about equally likely to be seen. ``get(batch_number, gen)`` draws the
    whole global batch from ``gen`` and returns this rank's share ``[b, C, crop, crop]``.
    """

    def __init__(self, sources: TextureSources, crop: int, global_batch: int, device: torch.device, *,
                 rank: int = 0, world_size: int = 1, hflip: bool = False, rot90: bool = False) -> None:
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
        self.cumulative = (positions.cumsum(0) / positions.sum()).float()  # [S], last = 1

    def get(self, batch_number: int, gen: torch.Generator) -> torch.Tensor:
        """This rank's crops for one global batch (``batch_number`` is unused: every draw comes from ``gen``)."""
        del batch_number
        n = self.global_batch
        u = torch.rand(n, 5, generator=gen, device=gen.device).cpu()[self.share]  # source, y, x, flip, turn
        which = torch.searchsorted(self.cumulative, u[:, 0].contiguous(), right=True).clamp(max=len(self.images) - 1)
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
