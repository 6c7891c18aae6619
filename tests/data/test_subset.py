"""data.fraction: seeded subsets, class-balanced with labels, fixed by fraction_seed alone."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from deconvgan.config import Config, DataConfig, ModelConfig
from deconvgan.data.dataset import ImageDataset
from deconvgan.data.subset import subset_indices, take_fraction
from deconvgan.errors import ConfigError


def _dataset(labels: list[int] | None, n: int = 50) -> ImageDataset:
    count = n if labels is None else len(labels)
    images = torch.arange(count, dtype=torch.uint8).view(count, 1, 1, 1).expand(count, 1, 2, 2).contiguous()
    y = None if labels is None else torch.tensor(labels, dtype=torch.int64)
    return ImageDataset(images=images, labels=y, name="toy", num_classes=None if y is None else int(y.max()) + 1)


@settings(max_examples=60, deadline=None)
@given(counts=st.lists(st.integers(1, 40), min_size=1, max_size=6), fraction=st.floats(0.01, 1.0),
       seed=st.integers(0, 2**31 - 1))
def test_each_class_keeps_its_share(counts: list[int], fraction: float, seed: int) -> None:
    labels = [k for k, c in enumerate(counts) for _ in range(c)]
    keep = subset_indices(len(labels), fraction, seed, torch.tensor(labels))
    assert torch.equal(keep, keep.unique())  # sorted, no repeats
    kept = torch.tensor(labels)[keep]
    for k, c in enumerate(counts):
        assert int((kept == k).sum()) == min(c, max(1, round(fraction * c)))  # every class, never emptied


def test_unlabelled_share_and_seed() -> None:
    a = take_fraction(_dataset(None, 200), 0.1, seed=3)
    assert len(a) == 20 and a.labels is None
    values = a.images[:, 0, 0, 0].tolist()
    assert values == sorted(values)  # dataset order kept
    assert torch.equal(take_fraction(_dataset(None, 200), 0.1, seed=3).images, a.images)  # a function of the seed
    assert not torch.equal(take_fraction(_dataset(None, 200), 0.1, seed=4).images, a.images)
    assert take_fraction(_dataset(None, 5), 1.0, seed=0).images.shape[0] == 5
    assert len(take_fraction(_dataset(None, 5), 0.01, seed=0)) == 1  # never empty


def test_labels_follow_their_images() -> None:
    labels = [i % 3 for i in range(60)]
    part = take_fraction(_dataset(labels), 0.5, seed=1)
    assert part.labels is not None and len(part) == 30
    assert torch.equal(part.labels, part.images[:, 0, 0, 0].long() % 3)  # image i carries label i % 3


def test_fraction_is_validated() -> None:
    for bad in (0.0, -0.5, 1.5, float("nan")):
        with pytest.raises(ConfigError, match="data.fraction"):
            DataConfig(fraction=bad)
    with pytest.raises(ConfigError, match="data.fraction=0.5 subsets"):
        Config(model=ModelConfig(arch="spatial", resolution=32, channels=3),
               data=DataConfig(source="texture-sample", fraction=0.5))
