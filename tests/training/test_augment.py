"""DiffAugment's ops on known images with fixed draws, differentiability, determinism, and ADA's p."""

from __future__ import annotations

import pytest
import torch

from deconvgan import distributed as dist
from deconvgan.config import AugmentConfig
from deconvgan.training.augment import (
    AdaptiveP,
    augment,
    brightness,
    contrast,
    cutout,
    saturation,
    translate,
)

SINGLE = dist.DistInfo()  # one process


def _image(n: int = 2, c: int = 3, side: int = 8) -> torch.Tensor:
    """Distinct, known pixel values in [-1, 1]: [n, c, side, side]."""
    return torch.linspace(-1, 1, n * c * side * side).reshape(n, c, side, side)


def test_colour_ops_are_the_diffaugment_formulas():
    x = _image()
    u = torch.tensor([0.1, 0.8]).view(2, 1, 1, 1)
    assert torch.allclose(brightness(x, u), x + torch.tensor([-0.4, 0.3]).view(2, 1, 1, 1))
    channel_mean = x.mean(1, keepdim=True)
    factor = torch.tensor([0.2, 1.6]).view(2, 1, 1, 1)
    assert torch.allclose(saturation(x, u), channel_mean + (x - channel_mean) * factor)
    image_mean = x.mean((1, 2, 3), keepdim=True)
    assert torch.allclose(contrast(x, u), image_mean + (x - image_mean) * torch.tensor([0.6, 1.3]).view(2, 1, 1, 1))
    gray = _image(c=1)
    assert torch.equal(saturation(gray, u), gray)  # one channel: nothing to saturate


def test_translation_shifts_by_whole_pixels_and_fills_with_zeros():
    x = _image(n=2, c=1, side=6)
    out = translate(x, dy=torch.tensor([2, -1]), dx=torch.tensor([-3, 0]))
    expected = torch.zeros_like(x)
    expected[0, :, 2:, :3] = x[0, :, :4, 3:]  # down 2, left 3
    expected[1, :, :5, :] = x[1, :, 1:, :]  # up 1
    assert torch.equal(out, expected)
    assert torch.equal(translate(x, torch.zeros(2, dtype=torch.long), torch.zeros(2, dtype=torch.long)), x)


def test_cutout_zeroes_exactly_the_square_clipped_at_the_border():
    x = torch.ones(2, 1, 8, 8)
    out = cutout(x, cy=torch.tensor([4, 0]), cx=torch.tensor([4, 7]), size=(4, 4))
    expected = torch.ones_like(x)
    expected[0, :, 2:6, 2:6] = 0  # rows 4 - 2 .. 4 + 1
    expected[1, :, 0:2, 5:8] = 0  # rows -2 .. 1 and columns 5 .. 8, clipped
    assert torch.equal(out, expected)


def test_every_op_passes_gradients_to_the_pixels_it_keeps():
    x = _image(n=4, c=3, side=16).requires_grad_(True)
    y = augment(x, torch.Generator().manual_seed(0), AugmentConfig(kind="diffaugment"))
    y.square().sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    # translation alone: a moved pixel gets gradient 1, one pushed out of the image or cut out gets 0
    x2 = torch.ones(1, 1, 8, 8, requires_grad=True)
    translate(x2, torch.tensor([3]), torch.tensor([0])).sum().backward()
    assert torch.equal(x2.grad[0, 0, :5], torch.ones(5, 8)) and torch.equal(x2.grad[0, 0, 5:], torch.zeros(3, 8))


def test_augmentation_is_the_documented_composition_of_the_drawn_ops():
    # Replay the draws in the documented order and apply the ops by hand: augment() must equal it exactly.
    cfg, x, seed = AugmentConfig(kind="diffaugment"), _image(n=3, c=3, side=16), 5
    got = augment(x, torch.Generator().manual_seed(seed), cfg)
    gen = torch.Generator().manual_seed(seed)
    want = x
    for fn in (brightness, saturation, contrast):
        u = torch.rand(3, generator=gen).view(-1, 1, 1, 1)
        torch.rand(3, generator=gen)  # the op's mask (p = 1: every image)
        want = fn(want, u)
    dy, dx = torch.randint(-2, 3, (3,), generator=gen), torch.randint(-2, 3, (3,), generator=gen)
    torch.rand(3, generator=gen)
    want = translate(want, dy, dx)
    cy, cx = torch.randint(0, 17, (3,), generator=gen), torch.randint(0, 17, (3,), generator=gen)
    want = cutout(want, cy, cx, (8, 8))
    assert torch.equal(got, want)
    assert (got == 0).flatten(1).sum(1).min() >= 3 * 4 * 8  # at least a quarter of the 8x8 square is inside


def test_p_zero_is_the_identity_and_p_does_not_shift_later_draws():
    cfg, x = AugmentConfig(kind="ada"), _image(n=4, c=3, side=16)
    gens = [torch.Generator().manual_seed(3) for _ in range(3)]
    assert torch.equal(augment(x, gens[0], cfg, p=0.0), x)
    augment(x, gens[1], cfg, p=0.5)
    augment(x, gens[2], cfg, p=1.0)
    after = [torch.rand(4, generator=g) for g in gens]
    assert torch.equal(after[0], after[1]) and torch.equal(after[0], after[2])


def test_p_between_zero_and_one_augments_some_images_and_keeps_others():
    cfg = AugmentConfig(kind="ada", policy=("translation",))
    x = _image(n=64, c=1, side=16)
    out = augment(x, torch.Generator().manual_seed(1), cfg, p=0.5)
    changed = (out != x).flatten(1).any(1)
    assert 10 < int(changed.sum()) < 54  # binomial(64, ~0.5 * 24/25 of shifts are non-zero)


def test_a_ranks_share_gets_the_draws_of_its_slice_of_the_global_batch():
    cfg, x = AugmentConfig(kind="diffaugment"), _image(n=6, c=3, side=16)
    whole = augment(x, torch.Generator().manual_seed(9), cfg)
    share = slice(2, 4)
    part = augment(x[share], torch.Generator().manual_seed(9), cfg, total=6, share=share)
    assert torch.equal(part, whole[share])


@pytest.mark.parametrize(("logit", "direction"), [(3.0, 1), (-3.0, -1)])
def test_ada_p_moves_towards_the_target_on_a_stub_discriminator(logit, direction):
    cfg = AugmentConfig(kind="ada", ada_target=0.6, ada_interval=2, ada_kimg=0.1, ada_p_init=0.5)
    ada = AdaptiveP(cfg, batch_size=10)
    trace = []
    for step in range(1, 7):
        ada.observe(torch.full((10,), logit))  # r_t = sign = +-1: over-confident on reals, or not
        ada.step_done(step, SINGLE)
        trace.append(ada.p)
    # adjusted at steps 2, 4, 6 by 2 steps * 10 images / 100 images = 0.2 each, clamped to [0, 1]
    expected = [0.5, 0.7, 0.7, 0.9, 0.9, 1.0] if direction > 0 else [0.5, 0.3, 0.3, 0.1, 0.1, 0.0]
    assert trace == pytest.approx(expected)


def test_ada_state_round_trip_continues_exactly():
    cfg = AugmentConfig(kind="ada", ada_interval=3, ada_kimg=1.0, ada_p_init=0.5)
    logits = [torch.randn(8, generator=torch.Generator().manual_seed(k)) + 0.8 for k in range(9)]
    whole, first = AdaptiveP(cfg, 8), AdaptiveP(cfg, 8)
    for step, lg in enumerate(logits, start=1):
        whole.observe(lg)
        whole.step_done(step, SINGLE)
    for step, lg in enumerate(logits[:4], start=1):  # stop mid-interval
        first.observe(lg)
        first.step_done(step, SINGLE)
    second = AdaptiveP(cfg, 8)
    second.load_state_dict(first.state_dict())
    for step, lg in enumerate(logits[4:], start=5):
        second.observe(lg)
        second.step_done(step, SINGLE)
    assert second.state_dict() == whole.state_dict() and whole.p not in (0.5, 0.0, 1.0)


def test_diffaugment_keeps_p_at_one_and_accumulates_nothing():
    ada = AdaptiveP(AugmentConfig(kind="diffaugment"), 8)
    ada.observe(torch.ones(8))
    ada.step_done(4, SINGLE)
    assert ada.state_dict() == {"p": 1.0, "sign_sum": 0.0, "count": 0.0}


@pytest.mark.parametrize(("override", "needle"), [
    ("augment.kind=flip", "augment.kind='flip'"),
    ("augment.policy=[color, color]", "each op once"),
    ("augment.policy=[colour]", "augment.policy entry='colour'"),
    ("augment.translation=0.7", "augment.translation=0.7"),
    ("augment.ada_interval=0", "augment.ada_interval=0"),
])
def test_bad_augment_settings_are_one_line_errors(override, needle):
    from deconvgan.configio import load_config
    from deconvgan.errors import ConfigError

    with pytest.raises(ConfigError, match=needle.replace("[", r"\[")) as info:
        load_config(None, [override])
    assert "\n" not in str(info.value)
