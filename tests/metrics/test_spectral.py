"""Spectral artifact scores: radial spectra, periodic peaks, and transposed vs resize-conv generators."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch
import torch.nn.functional as F

from deconvgan.config import ModelConfig
from deconvgan.metrics import (
    SpectralReport,
    periodic_energy,
    radial_power_spectrum,
    spectral_distance,
    spectral_report,
)
from deconvgan.metrics import spectral as spectral_module
from deconvgan.metrics.spectral import mean_power_spectrum, periodic_periods
from deconvgan.models import build_generator


def smooth_images(n: int = 16, side: int = 32, channels: int = 1, seed: int = 0) -> torch.Tensor:
    """Random 4x4 maps upsampled bicubically: smooth, with no periodic structure, in [-1, 1]."""
    coarse = torch.randn(n, channels, 4, 4, generator=torch.Generator().manual_seed(seed))
    return F.interpolate(coarse, size=side, mode="bicubic", align_corners=False).tanh()


def checkerboard(n: int = 4, side: int = 32, noise: float = 0.1) -> torch.Tensor:
    """A +-1 checkerboard (period 2 in both directions) plus a little noise."""
    board = torch.tensor([[1.0, -1.0], [-1.0, 1.0]]).repeat(side // 2, side // 2)
    return board + noise * torch.randn(n, 1, side, side, generator=torch.Generator().manual_seed(0))


def test_periods_follow_the_upsampling_levels() -> None:
    assert periodic_periods(32, 32) == [2, 4, 8]  # 4 -> 8 -> 16 -> 32
    assert periodic_periods(28, 28) == [2, 4]  # 7 -> 14 -> 28
    assert periodic_periods(64, 64) == [2, 4, 8, 16]
    assert periodic_periods(48, 48, stride=3) == [3]
    with pytest.raises(ValueError, match="stride=1"):
        periodic_periods(32, 32, stride=1)
    with pytest.raises(ValueError, match="no period"):
        periodic_energy(torch.randn(2, 1, 6, 6))


def test_checkerboard_has_a_huge_period_2_ratio() -> None:
    ratios = periodic_energy(checkerboard())
    assert set(ratios) == {2, 4, 8}
    assert ratios[2] > 1000  # saw ~3e4
    assert 0.5 < ratios[4] < 2 and 0.5 < ratios[8] < 2  # noise only at the longer periods


def test_period_4_stripes_peak_at_period_4_only() -> None:
    x = torch.arange(32.0)
    stripes = torch.cos(2 * math.pi * x / 4).expand(32, 32)  # frequency (0, 32/4)
    images = stripes + 0.1 * torch.randn(4, 1, 32, 32, generator=torch.Generator().manual_seed(1))
    ratios = periodic_energy(images)
    assert ratios[4] > 100 and ratios[2] < 2


def test_smooth_images_have_ratios_near_one() -> None:
    ratios = periodic_energy(smooth_images())
    assert all(0.5 < r < 2 for r in ratios.values()), ratios  # saw 1.23, 1.15, 1.08


def test_untrained_transposed_generator_has_the_periodic_peak_and_resize_conv_does_not() -> None:
    # The check: stride-2 transposed convs (kernel 4) stamp a period-2 pattern from the start;
    # resize-conv does not. Seeds 0..19 of this exact setup gave period-2 ratios of 26..126
    # (median 82) for transposed and 0.21..2.46 (median 0.59) for resize; transposed / resize was
    # >= 18.6 at every seed. The bounds below leave a wide margin on both sides.
    for seed in range(3):
        ratios = {}
        for upsample in ("transposed", "resize"):
            torch.manual_seed(seed)
            generator = build_generator(ModelConfig(resolution=32, upsample=upsample)).eval()  # DCGAN init
            z = torch.randn(64, generator.latent_dim, generator=torch.Generator().manual_seed(seed))
            with torch.no_grad():
                ratios[upsample] = periodic_energy(generator(z))[2]
        assert ratios["transposed"] > 10, ratios
        assert ratios["resize"] < 4, ratios
        assert ratios["transposed"] > 5 * ratios["resize"], ratios


def test_radial_spectrum_shape_normalisation_and_invariance() -> None:
    images = smooth_images(8, side=32, channels=3)
    spectrum = radial_power_spectrum(images)
    assert spectrum.dtype == torch.float64
    assert spectrum.shape == (24,)  # radii 0 .. round(sqrt(16^2 + 16^2)) = 23
    assert spectrum[0] == pytest.approx(-12)  # DC removed: the log floor
    assert float(mean_power_spectrum(images).sum()) == pytest.approx(1.0)  # each image's power sums to 1
    # Contrast and brightness (any affine intensity map, e.g. uint8 encoding) do not matter.
    uint8 = images.add(1).mul(127.5).round().to(torch.uint8)
    assert torch.allclose(radial_power_spectrum(images * 0.3 + 0.5), spectrum, atol=1e-9)
    assert spectral_distance(radial_power_spectrum(uint8), spectrum) < 0.01  # only rounding differs


def test_radial_spectrum_peaks_at_the_frequency_of_a_cosine() -> None:
    x = torch.arange(32.0)
    images = torch.cos(2 * math.pi * 5 * x / 32).expand(1, 1, 32, 32)  # 5 cycles per image
    assert int(radial_power_spectrum(images).argmax()) == 5


def test_grayscale_channels_are_averaged() -> None:
    gray = smooth_images(4)
    assert torch.allclose(radial_power_spectrum(gray.expand(4, 3, 32, 32)), radial_power_spectrum(gray))


def test_chunks_give_the_same_answer(monkeypatch: pytest.MonkeyPatch) -> None:
    images = smooth_images(10)
    whole = radial_power_spectrum(images)
    monkeypatch.setattr(spectral_module, "CHUNK", 3)
    assert torch.allclose(radial_power_spectrum(images), whole, rtol=1e-12)


def test_constant_images_are_skipped_and_all_constant_refused() -> None:
    images = smooth_images(4)
    with_constant = torch.cat([images, torch.full((2, 1, 32, 32), 0.7)])
    assert torch.allclose(radial_power_spectrum(with_constant), radial_power_spectrum(images))
    with pytest.raises(ValueError, match="constant"):
        radial_power_spectrum(torch.zeros(3, 1, 32, 32))


def test_spectral_distance_properties() -> None:
    a, b = radial_power_spectrum(smooth_images(seed=0)), radial_power_spectrum(checkerboard())
    assert spectral_distance(a, a) == 0.0
    assert spectral_distance(a, b) == pytest.approx(spectral_distance(b, a)) and spectral_distance(a, b) > 0.5
    shifted = a.clone()
    shifted[1:] += 1.0  # ten times the power at every radius: one decade
    assert spectral_distance(a, shifted) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="equal length"):
        spectral_distance(a, a[:-1])


def two_tones(alpha: float, beta: float, n: int = 2, side: int = 32) -> torch.Tensor:
    """``alpha cos(pi x) + beta cos(2 pi 15 x / 32)`` along x: power only at frequencies (0, 16) and (0, +-15)."""
    x = torch.arange(side, dtype=torch.float64)
    row = alpha * torch.cos(math.pi * x) + beta * torch.cos(2 * math.pi * 15 * x / side)
    return row.expand(n, 1, side, side).clone()


def test_spectral_report_of_two_tones_has_the_closed_form() -> None:
    # Normalised power: alpha^2 / T at (0, 16) and beta^2 / 4T at each of (0, +-15), T = alpha^2 + beta^2 / 2.
    # Period 2: peaks (0,16), (16,0), (16,16) (mean p16 / 3); their 24 off-grid neighbours hold (0, +-15)
    # (mean 2 p15 / 24): ratio = 4 p16 / p15 = 16 alpha^2 / beta^2. Radial spectra: the two sets differ
    # only at radii 15 and 16, by log10 of the power ratios there (bin counts cancel), averaged over 23 radii.
    real, fake = two_tones(0.25, 1.0), two_tones(1.0, 0.5)  # p16, p15: 1/9, 4/9 and 8/9, 1/18
    report = spectral_report(real, fake)
    assert isinstance(report, SpectralReport)
    assert report.real_periodic_ratio == pytest.approx(1.0, rel=1e-9)
    assert report.fake_periodic_ratio == pytest.approx(64.0, rel=1e-9)
    assert report.distance == pytest.approx((math.log10(8) + math.log10(8)) / 23, rel=1e-9)


def test_spectral_report() -> None:
    real, fake = smooth_images(16, seed=0), checkerboard(16)
    report = spectral_report(real, fake)
    assert report.fake_periodic_ratio > 1000 and 0.5 < report.real_periodic_ratio < 2
    assert spectral_report(real, real).distance == 0.0
    with pytest.raises(dataclasses.FrozenInstanceError, match="cannot assign to field"):
        report.distance = 0.0  # type: ignore[misc]
    with pytest.raises(ValueError, match="same size"):
        spectral_report(real, smooth_images(side=16))


@pytest.mark.parametrize(("shape", "match"), [((3, 32, 32), r"must be \[N, C, H, W\]"), ((0, 1, 32, 32), "empty")])
def test_refuses_bad_image_tensors(shape: tuple[int, ...], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        radial_power_spectrum(torch.zeros(shape))
