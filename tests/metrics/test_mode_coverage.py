"""Stacked MNIST mode coverage: the histogram, KL to uniform, and the real-data sanity numbers."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from deconvgan.config import DataConfig
from deconvgan.data import load_dataset
from deconvgan.data.mnist import read_mnist
from deconvgan.metrics.classifier import StackedDigitClassifier
from deconvgan.metrics.mode_coverage import (
    DEFAULT_SAMPLES,
    NUM_MODES,
    kl_to_uniform,
    mode_coverage,
    mode_histogram,
    stacked_modes,
)


class LookupDigits:
    """A perfect digit 'classifier' for MNIST images: looks each image's bytes up in the labelled set."""

    def __init__(self, images: np.ndarray, labels: np.ndarray) -> None:
        self.table = {img.tobytes(): int(label) for img, label in zip(images, labels, strict=True)}

    def predict(self, images: torch.Tensor) -> torch.Tensor:
        assert images.dtype == torch.uint8 and images.shape[1] == 1  # one channel at a time
        return torch.tensor([self.table[img.tobytes()] for img in images[:, 0].numpy()])


class ChannelMean:
    """A toy digit classifier: the channel's constant grey level / 10 is its 'digit'."""

    def predict(self, images: torch.Tensor) -> torch.Tensor:
        return (images.float().mean(dim=(1, 2, 3)) / 10).long()


def constant_stacked(digits: list[tuple[int, int, int]]) -> torch.Tensor:
    """uint8 [N, 3, 4, 4] images whose channel c is the constant 10 * digits[n][c] + 5."""
    x = torch.tensor(digits, dtype=torch.uint8) * 10 + 5  # [N, 3]
    return x[:, :, None, None].expand(-1, -1, 4, 4).contiguous()


def test_kl_of_uniform_is_zero_and_of_one_mode_is_log_k() -> None:
    assert kl_to_uniform(torch.full((NUM_MODES,), 7)) == pytest.approx(0.0, abs=1e-12)
    one = torch.zeros(NUM_MODES, dtype=torch.long)
    one[123] = 50
    assert kl_to_uniform(one) == pytest.approx(math.log(NUM_MODES))
    half = torch.zeros(NUM_MODES, dtype=torch.long)
    half[:500] = 3
    assert kl_to_uniform(half) == pytest.approx(math.log(2))


def test_modes_combine_channels_red_first() -> None:
    x = constant_stacked([(1, 2, 3), (9, 0, 0), (0, 0, 7)])
    assert stacked_modes(x, ChannelMean()).tolist() == [123, 900, 7]
    counts = mode_histogram(torch.tensor([5, 5, 998, 0]))
    expected = torch.zeros(NUM_MODES, dtype=torch.long)
    expected[[0, 5, 998]] = torch.tensor([1, 2, 1])
    assert torch.equal(counts, expected)  # one bin per mode (mode 999 unseen but counted as 0)


def test_mode_coverage_counts_modes_and_kl() -> None:
    x = constant_stacked([(1, 2, 3)] * 3 + [(4, 5, 6)])
    result = mode_coverage(x, ChannelMean())
    assert result.modes == 2 and result.num_samples == 4
    p = np.array([0.75, 0.25])
    assert result.kl == pytest.approx(float((p * np.log(p * NUM_MODES)).sum()))


class SureOfChannelMean(ChannelMean):
    """ChannelMean's digit with probability ``sure`` (the rest spread over the other nine)."""

    def __init__(self, sure: float) -> None:
        self.sure = sure

    def probabilities(self, images: torch.Tensor) -> torch.Tensor:
        digits = self.predict(images)
        probs = torch.full((len(digits), 10), (1 - self.sure) / 9)
        probs[torch.arange(len(digits)), digits] = self.sure
        return probs


def test_confidence_is_the_mean_top_probability_over_channels() -> None:
    x = constant_stacked([(1, 2, 3), (4, 5, 6)])
    assert mode_coverage(x, ChannelMean()).confidence is None  # labels only: no confidence
    result = mode_coverage(x, SureOfChannelMean(0.8))
    assert result.confidence == pytest.approx(0.8) and result.modes == 2  # digits from the probabilities' argmax
    assert result.kl == mode_coverage(x, ChannelMean()).kl


def test_stacked_classifier_is_unwrapped_to_its_digit_classifier() -> None:
    x = constant_stacked([(3, 1, 4), (1, 5, 9)])
    wrapped = StackedDigitClassifier.__new__(StackedDigitClassifier)
    wrapped.digits = ChannelMean()
    assert mode_coverage(x, wrapped).modes == 2


def test_bad_input_is_refused() -> None:
    with pytest.raises(ValueError, match=r"\[N, 3, H, W\]"):
        mode_coverage(torch.zeros(2, 1, 4, 4, dtype=torch.uint8), ChannelMean())
    with pytest.raises(ValueError, match="at least one"):
        mode_coverage(torch.zeros(0, 3, 4, 4, dtype=torch.uint8), ChannelMean())
    with pytest.raises(ValueError, match="outside 0..9"):
        mode_coverage(torch.full((2, 3, 4, 4), 200, dtype=torch.uint8), ChannelMean())


def test_real_stacked_mnist_with_true_labels_covers_all_modes(shared_root: Path) -> None:
    """The protocol on 26,000 real stacked images with a perfect classifier: ~1000 modes, KL ~ 0.02."""
    digits = LookupDigits(*read_mnist("mnist", "train", shared_root, download=False))
    cfg = DataConfig(source="stacked-mnist", root=str(shared_root), split="train", download=False,
                     stacked_count=DEFAULT_SAMPLES)
    real = load_dataset(cfg, 28, 3)
    result = mode_coverage(real.images, digits)
    assert torch.equal(stacked_modes(real.images, digits), real.labels)  # the lookup is exact
    assert result.num_samples == DEFAULT_SAMPLES
    assert result.modes >= 995  # P(a mode is missed) = (1 - 1/1000)^26000 ~ 5e-12 per mode
    # Sampling noise alone gives E[KL] ~ (K - 1) / (2 N) = 0.0192; MNIST's slightly unequal digit
    # frequencies (5421..6742 per class) add 3 x 0.0016: measured 0.0241.
    assert 0.018 < result.kl < 0.03


@pytest.mark.slow
def test_real_stacked_mnist_with_the_trained_classifier(tmp_path_factory: pytest.TempPathFactory,
                                                        shared_root: Path) -> None:
    """The same with the >= 99% MNIST classifier (trained here once per session: a few minutes)."""
    from deconvgan.metrics.classifier import domain_classifier

    cfg = DataConfig(source="stacked-mnist", root=str(shared_root), split="train", download=False,
                     stacked_count=DEFAULT_SAMPLES)
    cache = tmp_path_factory.getbasetemp() / "deconvgan-classifiers"  # shared with test_classifier's slow test
    classifier = domain_classifier(cfg, 28, 3, cache_dir=cache, progress=False)
    result = mode_coverage(load_dataset(cfg, 28, 3).images, classifier)
    print(f"\nreal Stacked MNIST, trained classifier: {result}")
    assert result.modes >= 990
    assert result.kl < 0.05
