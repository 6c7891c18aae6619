"""Seam score: exact values on constructed images, ~1 for periodic images, well above 1 for photo crops."""

from __future__ import annotations

import math

import pytest
import torch

from deconvgan.errors import DataError
from deconvgan.metrics.seams import seam_ratios, seam_score

from .texture_helpers import needs_textures, random_crops, texture

# Worked by hand (module doc's definition), uint8 so a subtraction that wraps around would show:
#   interior left-right steps: row 0: 1+1+1, row 3: 5+0+0           -> 8 over 12 pairs
#   interior top-bottom steps: cols 7, 1, 2, 3 (e.g. col 0: 1+1+5)   -> 13 over 12 pairs
#   left-right seam |x[i, 3] - x[i, 0]|: 3, 0, 0, 5                  -> 8 over 4 pairs
#   top-bottom seam |x[3, j] - x[0, j]|: 5, 1, 2, 3                  -> 11 over 4 pairs
#   score = (19 / 8) / (21 / 24) = 19 / 7; per direction (8/4)/(8/12) = 3 and (11/4)/(13/12) = 33/13
HAND_MADE = torch.tensor([[0, 1, 2, 3],
                          [1, 1, 1, 1],
                          [0, 0, 0, 0],
                          [5, 0, 0, 0]], dtype=torch.uint8)[None]


def test_hand_made_4x4_example() -> None:
    assert seam_score(HAND_MADE) == pytest.approx(19 / 7, rel=1e-12)
    lr, tb = seam_ratios(HAND_MADE)
    assert lr == pytest.approx(3.0, rel=1e-12) and tb == pytest.approx(33 / 13, rel=1e-12)
    # Same picture as floats in [-1, 1] and repeated over 3 channels: only ratios count.
    as_float = (HAND_MADE.double() / 127.5 - 1).repeat(3, 1, 1)
    assert seam_score(as_float) == pytest.approx(19 / 7, rel=1e-12)


def test_ramp_has_a_large_known_score() -> None:
    """x[c, i, j] = j: interior left-right steps 1, top-bottom 0; the left-right seam jumps W-1 where an
    ordinary left-right step is 1, so the score is W-1 (the top-bottom seam, 0, matches its interior)."""
    h, w = 5, 8
    ramp = torch.arange(w, dtype=torch.uint8).expand(2, h, w)
    assert seam_score(ramp) == pytest.approx(w - 1, rel=1e-12)
    assert seam_ratios(ramp) == pytest.approx((w - 1, 1.0))  # no top-bottom steps at all: defined 1.0


def triangle(n: int, period: int, phase: int) -> torch.Tensor:
    """Integer triangle wave of even ``period``: every step between neighbours (wrap included) is +-1."""
    t = (torch.arange(n) + phase) % period
    return torch.minimum(t, period - t).double()


def test_periodic_triangle_waves_score_exactly_one() -> None:
    """Steps of equal size everywhere, across the wrap too (periods divide the sides): exactly 1."""
    h, w = 24, 32
    channels = [triangle(h, 6, p)[:, None] + triangle(w, 8, q)[None, :] for p, q in ((0, 0), (1, 3), (4, 6))]
    image = torch.stack(channels)  # [3, 24, 32]
    assert seam_score(image) == 1.0
    assert seam_ratios(image) == (1.0, 1.0)
    assert seam_score(image[:, :, :-3]) > 1.2  # not a whole period wide: the left-right seam jumps


def test_sum_of_sines_with_integer_periods_matches_its_closed_form() -> None:
    """Plane waves with integer wave numbers continue across the border: the seam steps are the
    function's own steps at j = W-1 -> W and i = H-1 -> H, computed here from the formula, not the pixels."""
    h, w = 48, 64
    waves = [(1, 3, 0.3, 1.0), (4, -2, 1.7, 0.6), (-5, 7, 4.0, 0.4), (2, 11, 2.2, 0.3)]  # (a, b, phase, amplitude)

    def f(i: torch.Tensor, j: torch.Tensor) -> torch.Tensor:
        return sum(amp * torch.sin(2 * math.pi * (a * i / h + b * j / w) + ph) for a, b, ph, amp in waves)

    i = torch.arange(h, dtype=torch.float64)[:, None]
    j = torch.arange(w, dtype=torch.float64)[None, :]
    steps_lr = (f(i, j + 1) - f(i, j)).abs()  # [H, W]; column W-1 is the step across the seam
    steps_tb = (f(i + 1, j) - f(i, j)).abs()  # [H, W]; row H-1 is the step across the seam
    seam = steps_lr[:, -1].sum() + steps_tb[-1, :].sum()
    as_if_interior = h * steps_lr[:, :-1].mean() + w * steps_tb[:-1, :].mean()  # H*m_LR + W*m_TB
    expected = float(seam / as_if_interior)
    assert seam_score(f(i, j)[None]) == pytest.approx(expected, rel=1e-9)
    assert abs(expected - 1) < 0.05  # ~1.035: the seam is an ordinary place of a periodic image


def circular_noise(seed: int, side: int = 128, sigma: float = 2.0) -> torch.Tensor:
    """[3, side, side] white noise blurred by a Gaussian *circularly* (in the Fourier domain): truly periodic."""
    noise = torch.randn(3, side, side, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    freq = torch.fft.fftfreq(side, dtype=torch.float64)
    transfer = torch.exp(-2 * (math.pi * sigma) ** 2 * (freq[:, None] ** 2 + freq[None, :] ** 2))
    return torch.fft.ifft2(torch.fft.fft2(noise) * transfer).real


def test_circularly_smoothed_noise_scores_one_and_its_offset_crop_does_not() -> None:
    """A stationary periodic texture: every step, the wrap included, has the same distribution, so
    the score scatters around 1 (sd ~0.06 over seeds at 128 px); cut 5 and 7 px off and it jumps."""
    scores = torch.tensor([seam_score(circular_noise(seed)) for seed in range(16)])
    assert abs(scores.mean().item() - 1) < 0.04 and ((scores > 0.8) & (scores < 1.2)).all()
    cropped = torch.tensor([seam_score(circular_noise(seed)[:, 5:, 7:]) for seed in range(16)])
    assert (cropped > 2.5).all()  # saw 3.4 .. 4.5


@needs_textures
def test_random_crops_of_photographs_score_well_above_one() -> None:
    """The shared photographs tile as a whole (SOURCES.md: wrap/interior <= 1.46 per direction), so
    the same picture scores ~1 whole and well above 1 when cut at random places."""
    names = ["bark", "bricks", "grass", "gravel", "leaves", "rusty_metal", "sand", "wood"]
    crop_scores = []
    for k, name in enumerate(names):
        image = texture(name)
        assert seam_score(image) < 1.45  # saw 0.71 (leaves) .. 1.39 (bricks)
        crop_scores += [seam_score(crop) for crop in random_crops(image, 4, 128, seed=k)]
    scores = torch.tensor(crop_scores)
    assert (scores > 1.25).all() and scores.median() > 1.6  # saw min 1.3 (sand, grass), median ~2.2


def test_constant_images_and_periodic_stripes_score_one() -> None:
    """No step inside means no step at the seam either: a flat image tiles perfectly (1.0). Stripes on
    a non-square image: each seam direction is compared with its own interior steps (a plain pooled
    ratio would give 1.27 here: left-right and top-bottom weigh 4 : 6 in the seams, 20 : 18 inside)."""
    assert seam_score(torch.full((3, 8, 8), 200, dtype=torch.uint8)) == 1.0
    stripes = torch.tensor([0.0, 1.0, 0.0, 1.0])[:, None].expand(1, 4, 6)  # rows alternate; no left-right step
    assert seam_score(stripes) == 1.0 and seam_ratios(stripes) == (1.0, 1.0)


@pytest.mark.parametrize("bad, message", [
    (torch.zeros(4, 3, 8, 8), r"one image \[C, H, W\], got \(4, 3, 8, 8\)"),
    (torch.zeros(8, 8), r"one image \[C, H, W\], got \(8, 8\)"),
    (torch.zeros(3, 2, 8), r"at least 3x3 px"),
    (torch.tensor([[[0.0, 1, 2], [0, float("nan"), 2], [0, 1, 2]]]), "NaN or infinite"),
])
def test_bad_input_is_a_one_line_data_error(bad: torch.Tensor, message: str) -> None:
    with pytest.raises(DataError, match=message) as info:
        seam_score(bad)
    assert "\n" not in str(info.value)
