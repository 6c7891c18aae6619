"""Real batches: an in-memory uint8 dataset, seeded per-epoch shuffles, disjoint shards per rank.

The data cursor is a count of global batches drawn. Global batch ``j`` lies in epoch
``j // steps_per_epoch``; that epoch's order is ``randperm(N)`` from a seed derived from the run
seed and the epoch, so the order depends on nothing but (seed, epoch) and resume is exact. Each
of ``world_size`` ranks takes its own contiguous slice of the global batch (disjoint shards).
The last ``N mod batch`` images of each epoch's order are dropped (a different set each epoch).
"""

from __future__ import annotations

import torch

from deconvgan.errors import DataError
from deconvgan.seeds import derive_seed, make_generator


class RealBatches:
    """Draws normalised float batches in [-1, 1] from a uint8 ``[N, C, H, W]`` tensor."""

    def __init__(
        self, images: torch.Tensor, global_batch: int, seed: int, device: torch.device,
        *, rank: int = 0, world_size: int = 1, hflip: bool = False, labels: torch.Tensor | None = None,
    ) -> None:
        if images.dtype != torch.uint8 or images.ndim != 4:
            raise ValueError(f"expected a uint8 [N, C, H, W] tensor, got {images.dtype} {tuple(images.shape)}")
        if global_batch % world_size:
            raise DataError(
                f"train.batch_size={global_batch} is not divisible by the {world_size} processes: "
                "make it a multiple"
            )
        if images.shape[0] < global_batch:
            raise DataError(
                f"the dataset has {images.shape[0]} images, fewer than one batch of {global_batch}: "
                "lower train.batch_size"
            )
        # Keep the uint8 set where the model runs when it is a GPU: 60k MNIST images are 47 MB.
        self.images = images.to(device)
        self.labels = labels.to(device) if labels is not None else None  # int64 [N] class ids, or None
        self.global_batch = global_batch
        self.batch_per_rank = global_batch // world_size
        self.steps_per_epoch = images.shape[0] // global_batch
        self.seed = seed
        self.rank = rank
        self.hflip = hflip
        self._epoch = -1
        self._order = torch.empty(0, dtype=torch.long)

    def epoch_order(self, epoch: int) -> torch.Tensor:
        """The permutation of image indices used in ``epoch`` (the same on every rank)."""
        if epoch != self._epoch:
            gen = make_generator(derive_seed(self.seed, "epoch", epoch))
            self._order = torch.randperm(self.images.shape[0], generator=gen).to(self.images.device)
            self._epoch = epoch
        return self._order

    def indices(self, batch_number: int) -> torch.Tensor:
        """This rank's image indices for global batch ``batch_number``."""
        epoch, within = divmod(batch_number, self.steps_per_epoch)
        start = within * self.global_batch + self.rank * self.batch_per_rank
        return self.epoch_order(epoch)[start:start + self.batch_per_rank]

    def labels_of(self, batch_number: int) -> torch.Tensor | None:
        """Class ids [b] of the images :meth:`get` returns for ``batch_number`` (flips keep the class)."""
        return None if self.labels is None else self.labels[self.indices(batch_number)]

    def get(self, batch_number: int, gen: torch.Generator) -> torch.Tensor:
        """This rank's batch ``batch_number`` as float32 in [-1, 1]; flips drawn from ``gen``."""
        batch = self.images[self.indices(batch_number)].float().div_(127.5).sub_(1.0)  # [b, C, H, W]
        if self.hflip:
            # drawn for the whole global batch, then this rank's share: the same flips at any world size
            share = slice(self.rank * self.batch_per_rank, (self.rank + 1) * self.batch_per_rank)
            flip = torch.rand(self.global_batch, device=batch.device, generator=gen)[share] < 0.5
            batch = torch.where(flip[:, None, None, None], batch.flip(3), batch)
        return batch
