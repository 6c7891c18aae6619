"""Schedule, seeds, batches and the moving average in isolation."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from deconvgan.config import PhaseConfig, TrainConfig
from deconvgan.errors import ConfigError
from deconvgan.seeds import derive_seed, make_generator
from deconvgan.training.batches import RealBatches
from deconvgan.training.ema import ema_beta, recalibrate_batchnorm, update_ema
from deconvgan.training.schedule import Schedule


def test_schedule_phases_and_data_cursor():
    cfg = TrainConfig(batch_size=10, d_steps=2, phases=(
        PhaseConfig(steps=3), PhaseConfig(name="g", steps=2, train_d=False), PhaseConfig(name="again", kimg=0.02)))
    schedule = Schedule(cfg)
    assert schedule.total_steps == 3 + 2 + 2
    assert [schedule.phase_at(s).phase.name for s in range(7)] == ["adversarial"] * 3 + ["g"] * 2 + ["again"] * 2
    # 2 real batches per adversarial step, none in the generator-only phase.
    assert [schedule.real_batches_before(s) for s in range(8)] == [0, 2, 4, 6, 6, 6, 8, 10]
    with pytest.raises(IndexError, match="step 7 is past the schedule's 7 steps"):
        schedule.phase_at(7)


@pytest.mark.parametrize(("decay", "expected"), [
    ("none", [1.0] * 11),
    # 11 steps, decay from step 2 (0.2 of the run) to step 10 (the last): 8 equal falls from 1 to 0.2
    ("linear", [1.0, 1.0, 1.0, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2]),
    ("cosine", [1.0, 1.0, 1.0] + [0.2 + 0.8 * 0.5 * (1 + math.cos(math.pi * k / 8)) for k in range(1, 9)]),
])
def test_learning_rate_factor_falls_from_one_to_the_final_scale_after_the_start(decay, expected):
    cfg = TrainConfig(batch_size=10, phases=(PhaseConfig(steps=11),), lr_decay=decay, lr_decay_start=0.2,
                      lr_final_scale=0.2)
    factors = [Schedule(cfg).lr_factor(step) for step in range(11)]
    assert factors == pytest.approx(expected, abs=1e-12)
    assert all(a >= b for a, b in zip(factors[:-1], factors[1:], strict=True))  # never rises


def test_learning_rate_schedule_refuses_values_outside_its_range():
    with pytest.raises(ConfigError, match="train.lr_decay"):
        TrainConfig(lr_decay="step")
    with pytest.raises(ConfigError, match=r"train.lr_decay_start=1.0 must be in \[0, 1\)"):
        TrainConfig(lr_decay="linear", lr_decay_start=1.0)
    with pytest.raises(ConfigError, match=r"train.lr_final_scale=1.5 must be in \[0, 1\]"):
        TrainConfig(lr_decay="linear", lr_final_scale=1.5)


def test_derived_seeds_differ_and_repeat():
    assert derive_seed(0, "step", 0, 1) == derive_seed(0, "step", 0, 1)
    seeds = {derive_seed(s, p, r, k) for s in range(3) for p in ("step", "epoch") for r in range(2) for k in range(5)}
    assert len(seeds) == 3 * 2 * 2 * 5


@settings(max_examples=25, deadline=None)
@given(n=st.integers(8, 60), world=st.sampled_from([1, 2, 4]), per_rank=st.integers(1, 4))
def test_ranks_read_disjoint_shards_covering_each_epoch(n, world, per_rank):
    global_batch = world * per_rank
    assume(n >= global_batch)
    images = torch.arange(n, dtype=torch.uint8).view(n, 1, 1, 1).clone()
    ranks = [RealBatches(images, global_batch, seed=3, device=torch.device("cpu"), rank=r, world_size=world)
             for r in range(world)]
    alone = RealBatches(images, global_batch, seed=3, device=torch.device("cpu"))  # one process, whole batch
    steps = ranks[0].steps_per_epoch
    assert steps == n // global_batch
    for epoch in range(2):
        seen = [i for j in range(epoch * steps, (epoch + 1) * steps) for r in ranks for i in r.indices(j).tolist()]
        assert len(seen) == len(set(seen)) == steps * global_batch  # disjoint, no repeats within an epoch
        # Coverage: the epoch reads every image but the last n mod batch of its order, and nothing else.
        order = ranks[0].epoch_order(epoch).tolist()
        assert sorted(order) == list(range(n))
        assert set(seen) == set(order[:steps * global_batch])
        assert len(set(range(n)) - set(seen)) == n % global_batch
        # Shards: global batch j is the ranks' shares in rank order, the same images as one process reads.
        for j in range(epoch * steps, (epoch + 1) * steps):
            assert torch.equal(torch.cat([r.indices(j) for r in ranks]), alone.indices(j))
            assert torch.equal(torch.cat([r.get(j, None) for r in ranks]), alone.get(j, None))
    assert not torch.equal(ranks[0].epoch_order(0), ranks[0].epoch_order(1)) or n < 3


def test_batches_are_normalised_and_flips_are_seeded():
    images = torch.tensor([[[[0, 255]]], [[[255, 0]]]], dtype=torch.uint8)  # [2, 1, 1, 2]
    plain = RealBatches(images, 2, seed=0, device=torch.device("cpu"))
    batch = plain.get(0, make_generator(1))
    assert set(batch.flatten().tolist()) == {-1.0, 1.0}
    flipping = RealBatches(images, 2, seed=0, device=torch.device("cpu"), hflip=True)
    draws = {tuple(flipping.get(0, make_generator(s)).flatten().tolist()) for s in range(20)}
    assert len(draws) > 1  # some seeds flip, some do not
    assert flipping.get(0, make_generator(5)).tolist() == flipping.get(0, make_generator(5)).tolist()


def test_ema_half_life():
    # After exactly one half-life of images, the average has moved half way.
    beta = ema_beta(batch=100, images_seen=10**9, halflife_kimg=1.0, rampup=None)
    assert beta ** 10 == pytest.approx(0.5)
    # Ramp-up caps the half-life at rampup * images seen.
    assert ema_beta(100, 1000, 10.0, 0.1) == pytest.approx(0.5)
    ema, model = torch.nn.Linear(2, 2), torch.nn.Linear(2, 2)
    before = ema.weight.detach().clone()
    update_ema(ema, model, 0.25)
    assert torch.allclose(ema.weight, 0.25 * before + 0.75 * model.weight)


def test_recalibrated_generator_matches_its_train_mode_statistics():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.BatchNorm1d(8))
    with torch.no_grad():
        net[0].bias.fill_(3.0)  # running stats (mean 0) are far from the real activation mean (about 3)
    calibrated = recalibrate_batchnorm(net, 4, num_samples=4096, batch_size=512, gen=make_generator(0))
    assert not calibrated.training and net[1].running_mean.abs().max() == 0  # the original is untouched
    z = torch.randn(4096, 4, generator=make_generator(1))
    with torch.no_grad():
        out = calibrated(z)
    assert out.mean(0).abs().max() < 0.1 and (out.std(0) - 1).abs().max() < 0.1
