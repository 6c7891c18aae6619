"""``data.fraction``: a seeded subset of a dataset, class-balanced where the images have labels.

Small-data experiments train on, say, 10% of Fashion-MNIST: which images is a pure function of
``(fraction, fraction_seed)`` and the dataset, so every run of an experiment (any ``train.seed``)
sees the same subset. With labels each class keeps ``round(fraction * n_class)`` of its own images
(at least one), so the subset has the class balance of the whole; without labels the subset is
``round(fraction * N)`` images drawn uniformly. Kept images stay in dataset order.
"""

from __future__ import annotations

import dataclasses

import torch

from deconvgan.data.dataset import ImageDataset


def _keep(count: int, fraction: float) -> int:
    return min(count, max(1, round(fraction * count)))


def subset_indices(count: int, fraction: float, seed: int, labels: torch.Tensor | None = None) -> torch.Tensor:
    """Sorted int64 indices of the images a ``fraction`` of ``count`` keeps (see the module doc)."""
    gen = torch.Generator().manual_seed(seed)
    if labels is None:
        return torch.randperm(count, generator=gen)[:_keep(count, fraction)].sort().values
    chosen = []
    for k in torch.unique(labels).tolist():  # classes in id order: the draw for class k does not depend on others
        members = (labels == k).nonzero().flatten()
        order = torch.randperm(len(members), generator=gen)
        chosen.append(members[order[:_keep(len(members), fraction)]])
    return torch.cat(chosen).sort().values


def take_fraction(dataset: ImageDataset, fraction: float, seed: int) -> ImageDataset:
    """The dataset reduced to a seeded ``fraction`` of its images (itself when ``fraction`` is 1)."""
    if fraction >= 1:
        return dataset
    return _select(dataset, subset_indices(len(dataset), fraction, seed, dataset.labels))


def take_count(dataset: ImageDataset, count: int, seed: int = 0) -> ImageDataset:
    """``count`` images drawn uniformly without replacement (seeded; dataset order kept), or the whole
    dataset when it has no more. For sets stored in a meaningful order (a folder sorted by name), where
    the first ``count`` would be a biased sample."""
    if count >= len(dataset):
        return dataset
    drawn = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(seed))[:count]
    return _select(dataset, drawn.sort().values)


def _select(dataset: ImageDataset, keep: torch.Tensor) -> ImageDataset:
    """The images (and labels) at the sorted indices ``keep``."""
    labels = None if dataset.labels is None else dataset.labels[keep].contiguous()
    return dataclasses.replace(dataset, images=dataset.images[keep].contiguous(), labels=labels)
