"""Stacked MNIST: three digits per image, 1000 modes, reproducible draws."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from deconvgan.config import DataConfig
from deconvgan.data import load_dataset
from deconvgan.data.stacked import STACKED_SEED, draw_triples
from deconvgan.errors import DataError


def test_labels_match_the_digits_in_each_channel(
    shared_root: Path, mnist_train_raw: tuple[np.ndarray, np.ndarray]
) -> None:
    mnist_images, mnist_labels = mnist_train_raw
    cfg = DataConfig(source="stacked-mnist", root=str(shared_root), download=False, stacked_count=3000)
    ds = load_dataset(cfg, 28, 3)
    assert ds.images.shape == (3000, 3, 28, 28) and ds.num_classes == 1000
    assert ds.labels is not None and 0 <= int(ds.labels.min()) and int(ds.labels.max()) < 1000
    index = draw_triples(len(mnist_images), 3000, STACKED_SEED)
    for i in (0, 1, 17, 2999):
        digits = []
        for c in range(3):
            j = int(index[i, c])
            np.testing.assert_array_equal(ds.images[i, c].numpy(), mnist_images[j])
            digits.append(int(mnist_labels[j]))
        assert int(ds.labels[i]) == 100 * digits[0] + 10 * digits[1] + digits[2]
    assert len(torch.unique(ds.labels)) > 900  # 3000 uniform draws cover most of the 1000 modes

    resized = load_dataset(
        DataConfig(source="stacked-mnist", root=str(shared_root), download=False, stacked_count=3000,
                   max_images=50), 32, 3)
    assert resized.images.shape == (50, 3, 32, 32)
    assert torch.equal(resized.labels, ds.labels[:50])  # type: ignore[arg-type]


def test_draws_are_prefix_stable() -> None:
    assert torch.equal(draw_triples(60000, 100)[:10], draw_triples(60000, 10))


def test_needs_three_channels() -> None:
    with pytest.raises(DataError, match="set model.channels=3"):
        load_dataset(DataConfig(source="stacked-mnist"), 32, 1)
