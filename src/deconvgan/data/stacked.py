"""Stacked MNIST: three MNIST digits as the R, G, B channels of one image -- 1000 modes.

The standard mode-collapse benchmark (Metz et al. 2017, "Unrolled GANs"; Srivastava et al. 2017,
"VEEGAN"): a generator that covers the data makes all 1000 digit triples; a classifier applied
per channel counts how many it actually produces.
"""

from __future__ import annotations

import torch

from deconvgan.config import DataConfig
from deconvgan.data.dataset import ImageDataset, check_memory, keep_first, resolve_data_root
from deconvgan.data.mnist import read_mnist
from deconvgan.data.resize import resize_images
from deconvgan.errors import DataError

# Fixed seed of the digit draws, so every run (and every process of a distributed run) sees the
# same stacked set; changing it changes the dataset.
STACKED_SEED = 2019
NUM_MODES = 10**3  # digit triples: 10 classes in each of R, G, B


def draw_triples(num_source: int, count: int, seed: int = STACKED_SEED) -> torch.Tensor:
    """Indices ``[count, 3]`` (R, G, B) drawn uniformly with replacement from ``num_source`` digits.

    One ``randint`` call with a fixed-seed generator: any prefix of the result is the same
    whatever ``count`` is, so ``max_images`` keeps a prefix of the full stacked set.
    """
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(0, num_source, (count, 3), generator=generator)


def mode_of_digits(digits: torch.Tensor) -> torch.Tensor:
    """Digit triples ``[M, 3]`` (red, green, blue) -> mode ids ``[M]``: ``100 * red + 10 * green + blue``."""
    return digits[:, 0] * 100 + digits[:, 1] * 10 + digits[:, 2]


def stack_digits(
    images: torch.Tensor, labels: torch.Tensor, index: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack the digits ``index`` ``[M, 3]`` picks as channels.

    ``images`` uint8 ``[N, H, W]``, ``labels`` int64 ``[N]``. Returns uint8 ``[M, 3, H, W]`` (contiguous)
    and labels ``100 * d_red + 10 * d_green + d_blue`` ``[M]``.
    """
    stacked = images[index]  # [M, 3, H, W]: advanced indexing gathers one digit per channel
    digits = labels[index]  # [M, 3]
    return stacked.contiguous(), mode_of_digits(digits)


def load_stacked_mnist(cfg: DataConfig, resolution: int, channels: int) -> ImageDataset:
    """``cfg.stacked_count`` stacked images from MNIST's ``cfg.split`` (first ``max_images`` kept)."""
    if channels != 3:
        raise DataError(
            f"data.source=stacked-mnist makes RGB images (one digit per channel) but "
            f"model.channels={channels}; set model.channels=3"
        )
    count = keep_first(cfg.stacked_count, cfg.max_images)
    name = f"stacked-mnist-{cfg.split}"
    check_memory(count, 3, resolution, name)
    images, labels = read_mnist("mnist", cfg.split, resolve_data_root(cfg.root), cfg.download)
    index = draw_triples(len(images), cfg.stacked_count)[:count]
    stacked, stacked_labels = stack_digits(torch.from_numpy(images), torch.from_numpy(labels).long(), index)
    return ImageDataset(
        images=resize_images(stacked, resolution),
        labels=stacked_labels,
        name=name,
        num_classes=NUM_MODES,
    )
