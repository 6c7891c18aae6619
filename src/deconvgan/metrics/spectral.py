"""Spectral artifact scores: how far a generator's frequency content is from the data's.

Durall, Keuper & Keuper (2020), "Watch your up-convolution": up-convolutions leave a generator's
images with too much (or too little) high-frequency power, visible in the azimuthally averaged
power spectrum. A stride-``s`` transposed convolution with a kernel not divisible by ``s`` also
stamps a period-``s`` pattern on its output (Odena et al. 2016, checkerboard artifacts), which in
the 2-D spectrum is a set of sharp peaks at the frequencies ``(a * H / s, b * W / s)``; every
earlier upsampling level repeats this at periods ``s^2``, ``s^3``, ...

Everything here starts from the same **normalised power spectrum** of an image set:

1. Average the channels (grayscale), subtract each image's mean (the DC term is brightness, not
   frequency content).
2. ``P = |FFT2(x)|^2`` per image, divided by its total power ``sum P`` (so every image's spectrum
   sums to 1: invariant to contrast and to any affine map of the intensities, hence uint8 or
   [-1, 1] floats give the same result). Constant images (no power to normalise) are skipped.
3. Average over the images -> ``[H, W]``, indexed by signed integer frequency (cycles per image).

The images are processed in chunks, so large sets need ``O(chunk * H * W)`` memory only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

CHUNK = 256  # images per FFT batch
LOG_FLOOR = 1e-12  # floor before log10: normalised power fractions below this count as "none"
CONSTANT_POWER = 1e-12  # mean squared deviation per pixel below which an image counts as constant
MIN_PEAK_SPACING = 4  # periodic peaks must be this many frequency bins apart to have clean neighbours


def _check_images(images: Tensor) -> None:
    if images.dim() != 4:
        raise ValueError(f"images must be [N, C, H, W], got shape {tuple(images.shape)}")
    if images.shape[0] == 0:
        raise ValueError("images is empty: need at least one image")


def mean_power_spectrum(images: Tensor) -> Tensor:
    """The set's mean normalised power spectrum: float64 ``[H, W]``, unshifted (index = frequency mod side).

    ``images``: ``[N, C, H, W]``, uint8 or float (any affine intensity scale: see the module doc).
    Each image's spectrum sums to 1 (DC excluded), so the result sums to 1 too.
    Raises ValueError if every image is constant.
    """
    _check_images(images)
    _, _, h, w = images.shape
    total = torch.zeros(h, w, dtype=torch.float64)
    used = 0
    for chunk in images.split(CHUNK):
        x = chunk.detach().cpu().to(torch.float64).mean(dim=1)  # [n, H, W] grayscale
        x = x - x.mean(dim=(-2, -1), keepdim=True)  # drop DC: P[0, 0] becomes 0
        power = torch.fft.fft2(x).abs().square()  # [n, H, W]
        energy = power.sum(dim=(-2, -1))  # [n] = H*W * sum x^2 (Parseval)
        keep = energy > CONSTANT_POWER * (h * w) ** 2
        total += (power[keep] / energy[keep, None, None]).sum(dim=0)
        used += int(keep.sum())
    if used == 0:
        raise ValueError("every image is constant: a power spectrum needs some intensity variation")
    return total / used


def _radii(h: int, w: int) -> Tensor:
    """Integer radius ``round(sqrt(fy^2 + fx^2))`` of every unshifted FFT bin: int64 ``[H, W]``."""
    fy = torch.fft.fftfreq(h, d=1.0 / h, dtype=torch.float64)  # signed integer frequencies
    fx = torch.fft.fftfreq(w, d=1.0 / w, dtype=torch.float64)
    return torch.sqrt(fy[:, None] ** 2 + fx[None, :] ** 2).round().long()


def radial_profile(power: Tensor) -> Tensor:
    """Azimuthal average of an unshifted ``[H, W]`` spectrum over integer radii -> ``[R]`` (index = radius)."""
    radii = _radii(*power.shape).flatten()
    sums = torch.bincount(radii, weights=power.flatten())
    counts = torch.bincount(radii).clamp_min(1)
    return sums / counts


def radial_power_spectrum(images: Tensor) -> Tensor:
    """The 1-D spectrum of Durall et al.: ``log10`` of the azimuthally averaged normalised power.

    ``images``: ``[N, C, H, W]`` (float in [-1, 1], or uint8; the result does not depend on an affine
    intensity map). Returns float64 ``[R]``: element ``r`` is ``log10`` of the mean normalised power
    (see the module doc) over the frequencies with ``round(|f|) = r`` cycles per image, for
    ``r = 0 .. round(sqrt((H/2)^2 + (W/2)^2))`` (the corners up to the diagonal Nyquist frequency
    included, where a checkerboard's ``(H/2, W/2)`` peak lives). The mean is taken in power, then
    the log. Element 0 (DC) is always ``log10(1e-12)``: each image's mean is removed.
    Computing it on the unshifted FFT with signed frequencies is the same as ``fftshift`` first.
    """
    return radial_profile(mean_power_spectrum(images)).clamp_min(LOG_FLOOR).log10()


def spectral_distance(spec_a: Tensor, spec_b: Tensor) -> float:
    """Mean absolute difference of two :func:`radial_power_spectrum` results, over radii ``>= 1``.

    In decades of power (1.0 = a factor of 10 on average); 0 for identical spectra; symmetric.
    The DC bin is left out: it carries no power by construction.
    """
    if spec_a.dim() != 1 or spec_a.shape != spec_b.shape:
        raise ValueError(
            f"spectra must be 1-D of equal length (same image size), got {tuple(spec_a.shape)} and "
            f"{tuple(spec_b.shape)}"
        )
    if spec_a.numel() < 2:
        raise ValueError("spectra need at least one non-DC radius")
    diff = spec_a.to(torch.float64)[1:] - spec_b.to(torch.float64)[1:]
    return float(diff.abs().mean())


def periodic_periods(h: int, w: int, stride: int = 2) -> list[int]:
    """Periods ``stride^l`` (l = 1, 2, ...) analysed for an ``h x w`` image.

    A period ``p`` is kept while it divides both sides and its peaks stay at least
    ``MIN_PEAK_SPACING`` frequency bins apart (``side / p >= 4``), so each peak has non-peak
    neighbours. This is one period per upsampling level of a generator whose base side is >= 4:
    32 px -> [2, 4, 8] (4 -> 8 -> 16 -> 32), 28 px -> [2, 4], 64 px -> [2, 4, 8, 16].
    """
    if stride < 2:
        raise ValueError(f"stride={stride} must be >= 2: stride-1 layers leave no periodic pattern")
    periods = []
    p = stride
    while h % p == 0 and w % p == 0 and min(h, w) // p >= MIN_PEAK_SPACING:
        periods.append(p)
        p *= stride
    return periods


def _peak_mask(h: int, w: int, period: int) -> Tensor:
    """Bins ``(a * h / p, b * w / p)`` for ``a, b`` in ``0..p-1``, DC included: bool ``[H, W]``."""
    mask = torch.zeros(h, w, dtype=torch.bool)
    mask[:: h // period, :: w // period] = True
    return mask


def periodic_ratios(power: Tensor, stride: int = 2) -> dict[int, float]:
    """:func:`periodic_energy` on an already computed :func:`mean_power_spectrum` ``[H, W]``."""
    h, w = power.shape
    ratios: dict[int, float] = {}
    lower = torch.zeros(h, w, dtype=torch.bool)
    lower[0, 0] = True  # DC: zero by construction, never a peak nor a neighbour
    for period in periodic_periods(h, w, stride):
        grid = _peak_mask(h, w, period)
        peaks = grid & ~lower  # new at this level: not a peak of a shorter period, not DC
        near = torch.zeros_like(grid)
        for dy in (-1, 0, 1):
            for dx in (-1, 0, 1):
                if dy or dx:
                    near |= peaks.roll((dy, dx), dims=(0, 1))  # circular: frequencies wrap around
        near &= ~grid  # neighbours of peaks that are not themselves on the periodic grid
        neighbour_power = power[near].mean()
        ratio = power[peaks].mean() / neighbour_power if neighbour_power > 0 else math.inf
        ratios[period] = float(ratio)
        lower |= grid
    return ratios


def periodic_energy(images: Tensor, stride: int = 2) -> dict[int, float]:
    """Peak-to-neighbourhood power ratios at the periodic frequencies of stride-``stride`` upsampling.

    Definition. ``P`` is the set's mean normalised power spectrum (module doc), indexed by integer
    frequency modulo the side. For each period ``p`` in :func:`periodic_periods` (``stride``,
    ``stride^2``, ... -- one per upsampling level), the *peaks* are the frequencies
    ``(a * H / p, b * W / p)``, ``a, b in 0..p-1``, that are neither DC nor a peak of a shorter
    period (for ``p = 2``: ``(0, W/2)``, ``(H/2, 0)``, ``(H/2, W/2)``; for ``p = 4`` the twelve new
    multiples of ``H/4``, ``W/4``). The *neighbours* are the frequencies in the 8-neighbourhood of
    any peak (wrapping around) that are not on the period's grid. The ratio is::

        ratio(p) = mean(P over the peaks) / mean(P over the neighbours)

    1.0 means no peak: the spectrum is as strong at the periodic frequencies as right next to
    them. A period-``p`` pattern (checkerboard: ``p = 2``) concentrates power exactly on the peaks
    and gives a ratio far above 1. Smooth images give ~1 or a little below (power falls with
    frequency, and the ``H/2`` peaks are the highest frequencies of their neighbourhood).

    Returns ``{period: ratio}`` in increasing period, e.g. ``{2: ..., 4: ..., 8: ...}`` at 32 px.
    Raises ValueError if ``stride`` leaves no analysable period at this image size.
    """
    _check_images(images)
    if not periodic_periods(images.shape[2], images.shape[3], stride):
        raise ValueError(
            f"images of {images.shape[2]}x{images.shape[3]} px have no period {stride}^l with peaks "
            f">= {MIN_PEAK_SPACING} bins apart; stride {stride} needs sides divisible by {stride * MIN_PEAK_SPACING}"
        )
    return periodic_ratios(mean_power_spectrum(images), stride)


@dataclass(frozen=True)
class SpectralReport:
    """Spectral comparison of generated and real images (see :func:`spectral_report`)."""

    distance: float  # spectral_distance of the radial spectra, in decades of power (0 = equal)
    fake_periodic_ratio: float  # periodic_energy(fake)[stride]: 1.0 = no checkerboard peak
    real_periodic_ratio: float  # the same for the real images: the baseline to compare against


def spectral_report(real_images: Tensor, fake_images: Tensor, stride: int = 2) -> SpectralReport:
    """Radial-spectrum distance and the period-``stride`` peak ratios of both sets.

    Both ``[N, C, H, W]`` with the same ``H, W`` (uint8 or floats; counts may differ). The
    periodic ratio reported is that of the last upsampling level (period ``stride``), where a
    transposed-conv generator's artifact is strongest; call :func:`periodic_energy` for all levels.
    """
    _check_images(real_images)
    _check_images(fake_images)
    if real_images.shape[2:] != fake_images.shape[2:]:
        raise ValueError(
            f"real images are {tuple(real_images.shape[2:])} px, fake images {tuple(fake_images.shape[2:])}: "
            "compare images of the same size"
        )
    if not periodic_periods(real_images.shape[2], real_images.shape[3], stride):
        raise ValueError(f"images of {tuple(real_images.shape[2:])} px are too small for stride {stride}")
    real_power, fake_power = mean_power_spectrum(real_images), mean_power_spectrum(fake_images)
    distance = spectral_distance(
        radial_profile(real_power).clamp_min(LOG_FLOOR).log10(),
        radial_profile(fake_power).clamp_min(LOG_FLOOR).log10(),
    )
    return SpectralReport(
        distance=distance,
        fake_periodic_ratio=periodic_ratios(fake_power, stride)[stride],
        real_periodic_ratio=periodic_ratios(real_power, stride)[stride],
    )
