"""Stacked MNIST mode coverage: the VEEGAN / PacGAN protocol.

Generate 26,000 images, classify each of the three channels with an MNIST digit classifier
(>= 99% test accuracy), and read the triple of digits as one of 1000 modes. Report how many modes
received at least one sample, and KL(generated mode histogram || uniform over 1000) in nats.
A perfect generator gets ~1000 modes and KL ~ (1000 - 1) / (2 * 26000) ~ 0.02 from sampling
noise alone (the real data score about that). A classifier that also gives class probabilities yields
the mean confidence on the channels (the largest probability, averaged over the 3N channels): unsure,
half-formed digits land in arbitrary bins and make the histogram uneven, so it explains a high KL.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import torch

from deconvgan.data.stacked import NUM_MODES, mode_of_digits  # the dataset defines its modes; the metric counts them
from deconvgan.metrics.classifier import StackedDigitClassifier, stacked_channels

DEFAULT_SAMPLES = 26_000  # the protocol's sample count (Srivastava et al. 2017; Lin et al. 2018)


class DigitClassifier(Protocol):
    """Anything that labels single-channel digit images: uint8 [N, 1, H, W] -> int64 [N] in 0..9."""

    def predict(self, images: torch.Tensor) -> torch.Tensor: ...


@dataclass(frozen=True)
class ModeCoverage:
    """Modes hit (of 1000), KL to uniform (nats), the number of samples classified and the classifier's
    mean confidence on the channels (None when the classifier gives no probabilities)."""

    modes: int
    kl: float
    num_samples: int
    confidence: float | None = None


def mode_histogram(modes: torch.Tensor, num_modes: int = NUM_MODES) -> torch.Tensor:
    """int64 counts [num_modes] of mode ids [N]."""
    return torch.bincount(modes.long(), minlength=num_modes)


def kl_to_uniform(counts: torch.Tensor) -> float:
    """KL(p || uniform) in nats for a histogram ``counts`` [K]: sum over p > 0 of p log(p K)."""
    p = counts.double() / counts.sum()
    p = p[p > 0]  # 0 log 0 = 0
    return float((p * (p * counts.numel()).log()).sum())


def _modes(digits: torch.Tensor) -> torch.Tensor:
    """Per-channel digits [3N] -> mode ids [N], after checking they are digits."""
    if digits.min() < 0 or digits.max() > 9:
        raise ValueError("the digit classifier returned labels outside 0..9")
    return mode_of_digits(digits.reshape(-1, 3))


def stacked_modes(images: torch.Tensor, classifier: DigitClassifier) -> torch.Tensor:
    """uint8 [N, 3, H, W] -> mode ids [N]: 100 * digit(red) + 10 * digit(green) + digit(blue)."""
    return _modes(classifier.predict(stacked_channels(images)))  # one batch for all channels


def mode_coverage(images: torch.Tensor, classifier: DigitClassifier | StackedDigitClassifier) -> ModeCoverage:
    """Mode coverage of Stacked MNIST ``images`` (uint8 [N, 3, H, W]) under a digit ``classifier``.

    ``classifier`` labels one channel at a time (e.g. the MNIST :class:`DomainClassifier`); a
    :class:`StackedDigitClassifier` is used through its digit classifier. The protocol uses N = 26,000.
    With a ``probabilities`` method ([N, 10] softmax), the digits are its argmax and the result carries
    the mean confidence.
    """
    if images.shape[0] == 0:
        raise ValueError("mode coverage needs at least one image")
    if isinstance(classifier, StackedDigitClassifier):
        classifier = classifier.digits  # its per-channel digit classifier
    channels = stacked_channels(images)
    confidence = None
    if hasattr(classifier, "probabilities"):
        probs = classifier.probabilities(channels)  # [3N, 10]
        best, digits = probs.max(dim=1)
        confidence = float(best.double().mean())
    else:
        digits = classifier.predict(channels)
    counts = mode_histogram(_modes(digits))
    return ModeCoverage(modes=int((counts > 0).sum()), kl=kl_to_uniform(counts), num_samples=int(images.shape[0]),
                        confidence=confidence)
