"""The training loop: determinism, exact resume, the phase schedule and what a run directory holds."""

from __future__ import annotations

import copy
import json

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file

from deconvgan.checkpoint import load_snapshot
from deconvgan.errors import ConfigError, DataError
from deconvgan.models import build_discriminator
from deconvgan.sampling import generate
from deconvgan.seeds import derive_seed, make_generator
from deconvgan.training import train
from deconvgan.training.ema import recalibrate_batchnorm
from deconvgan.training.outputs import RECALIBRATION_SAMPLES


def _state_tensors(run_dir):
    return load_file(str(run_dir / "training-state.safetensors"))


def _assert_bit_identical(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_same_config_and_seed_give_bit_identical_weights(make_config, blobs, tmp_path):
    cfg = make_config("data.hflip=true")
    a = train(cfg, run_dir=tmp_path / "a", dataset=blobs)
    b = train(cfg, run_dir=tmp_path / "b", dataset=blobs)
    _assert_bit_identical(_state_tensors(a.run_dir), _state_tensors(b.run_dir))
    c = train(make_config("data.hflip=true", "train.seed=1"), run_dir=tmp_path / "c", dataset=blobs)
    a_state, c_state = _state_tensors(a.run_dir), _state_tensors(c.run_dir)
    assert any(not torch.equal(a_state[k], c_state[k]) for k in a_state if k.startswith("G."))


@pytest.mark.parametrize("overrides", [
    # both phases of the design: adversarial, then the generator alone against the frozen D
    # (with the rates decaying over the run: the schedule follows the step, so it resumes exactly)
    ("train.phases=[{steps: 5}, {name: g-only, steps: 4, train_d: false}]", "train.lr_decay=cosine",
     "train.lr_decay_start=0.25", "train.lr_final_scale=0.1"),
    # several D steps per G step, a penalty drawing its own randomness, flips; 8 steps, so that every
    # stop point below falls inside the schedule (7: after the last snapshot at 6, before the end)
    ("train.d_steps=2", "loss.kind=wasserstein", "model.d_norm=none", "data.hflip=true", "loss.r1_gamma=1.0",
     "loss.r1_every=3",
     "train.phases=[{steps: 8}]"),
])
@pytest.mark.parametrize("stop_at", [2, 5, 7])
def test_stop_and_resume_is_bit_identical_to_one_run(make_config, blobs, tmp_path, overrides, stop_at):
    cfg = make_config(*overrides)
    total = cfg.train.total_steps
    assert stop_at < total, "every case must stop inside its schedule (no silently skipped case)"
    whole = train(cfg, run_dir=tmp_path / "whole", dataset=blobs)
    first = train(cfg, run_dir=tmp_path / "parts", dataset=blobs, until_step=stop_at)
    assert first.step == stop_at and not (tmp_path / "parts" / "samples" / "progress.gif").exists()
    second = train(cfg, resume=tmp_path / "parts", dataset=blobs)
    assert second.step == whole.step == total
    _assert_bit_identical(_state_tensors(whole.run_dir), _state_tensors(second.run_dir))
    _assert_bit_identical(load_file(str(whole.snapshot)), load_file(str(second.snapshot)))
    # stats.jsonl: one line per logging interval, no duplicates from the interrupted session
    steps = [json.loads(line)["step"] for line in (tmp_path / "parts" / "stats.jsonl").read_text().splitlines()]
    whole_steps = [json.loads(line)["step"] for line in (tmp_path / "whole" / "stats.jsonl").read_text().splitlines()]
    assert sorted(set(steps)) == steps and set(whole_steps) <= set(steps)


def test_decaying_rates_are_logged_and_a_flat_decay_changes_nothing(make_config, blobs, tmp_path):
    plain = train(make_config(), run_dir=tmp_path / "plain", dataset=blobs)
    # final scale 1: the decay path runs every step but the rates stay the config's: bit-identical weights
    flat = train(make_config("train.lr_decay=linear", "train.lr_final_scale=1.0"), run_dir=tmp_path / "flat",
                 dataset=blobs)
    _assert_bit_identical(_state_tensors(plain.run_dir), _state_tensors(flat.run_dir))
    cfg = make_config("train.lr_decay=linear", "train.lr_final_scale=0.0", "run.log_every_kimg=0.001")
    decayed = train(cfg, run_dir=tmp_path / "decayed", dataset=blobs)
    logged = [json.loads(line) for line in (decayed.run_dir / "stats.jsonl").read_text().splitlines()]
    total = cfg.train.total_steps
    assert [row["lr_factor"] for row in logged] == pytest.approx([1 - s / (total - 1) for s in range(total)])
    plain_state, decayed_state = _state_tensors(plain.run_dir), _state_tensors(decayed.run_dir)
    assert any(not torch.equal(plain_state[k], decayed_state[k]) for k in plain_state if k.startswith("G."))


def test_lazy_r1_penalises_every_nth_step_only(make_config, blobs, tmp_path):
    cfg = make_config("loss.r1_gamma=1.0", "loss.r1_every=3", "run.log_every_kimg=0.001")
    run = train(cfg, run_dir=tmp_path / "lazy", dataset=blobs)
    logged = [json.loads(line) for line in (run.run_dir / "stats.jsonl").read_text().splitlines()]
    assert len(logged) == cfg.train.total_steps >= 4
    # step s (0-based) is due when s % 3 == 0; stats.jsonl numbers the step after it
    assert [row["step"] for row in logged if "r1" in row] == [s + 1 for s in range(len(logged)) if s % 3 == 0]
    every = train(make_config("loss.r1_gamma=1.0", "run.log_every_kimg=0.001"), run_dir=tmp_path / "every",
                  dataset=blobs)
    assert all("r1" in json.loads(line) for line in (every.run_dir / "stats.jsonl").read_text().splitlines())


def test_generator_only_phase_leaves_the_discriminator_untouched(make_config, blobs, tmp_path):
    cfg = make_config("train.phases=[{steps: 3}, {name: g-only, steps: 3, train_d: false}]")
    train(cfg, run_dir=tmp_path / "r", dataset=blobs, until_step=3)
    d_before = {k: v for k, v in _state_tensors(tmp_path / "r").items() if k.startswith("D.") and "running" not in k
                and "num_batches" not in k}
    g_before = _state_tensors(tmp_path / "r")
    train(cfg, resume=tmp_path / "r", dataset=blobs)
    after = _state_tensors(tmp_path / "r")
    for key, value in d_before.items():
        assert torch.equal(after[key], value), f"{key} changed in the generator-only phase"
    assert any(not torch.equal(after[k], g_before[k]) for k in g_before if k.startswith("G."))
    assert all(not k.startswith("opt_d") or torch.equal(after[k], g_before[k]) for k in g_before)


def test_run_directory_contents(make_config, blobs):
    result = train(make_config(), dataset=blobs)
    run = result.run_dir
    assert run.name == "00000-tiny"
    for name in ("config.yaml", "log.txt", "stats.jsonl", "snapshot.safetensors", "training-state.safetensors"):
        assert (run / name).is_file(), name
    grids = sorted(p.name for p in (run / "samples").glob("grid-*.png"))
    assert grids == ["grid-0000000.png", "grid-0000003.png", "grid-0000006.png"]
    assert (run / "samples" / "progress.gif").is_file()
    records = [json.loads(line) for line in (run / "stats.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [2, 4, 6]
    for key in ("loss_d", "loss_g", "d_real", "d_fake", "images_per_s", "wall_time_s", "kimg"):
        assert key in records[-1]
    assert [r["kimg"] for r in records] == [0.016, 0.032, 0.048] and result.last_stats == records[-1]
    # The next run gets the next number.
    assert train(make_config(), dataset=blobs).run_dir.name == "00001-tiny"


def test_logged_stats_are_the_interval_means_of_what_the_discriminator_saw(make_config, blobs, tmp_path):
    # Every discriminator call is recorded (input, logits); stats.jsonl must hold, per 2-step interval,
    # the means of sigmoid(real logits), sigmoid(fake logits), the non-saturating losses written out
    # here, and sigmoid of the generator step's logits. Each step calls D on real, fake, fake again.
    cfg = make_config()
    assert (cfg.loss.kind, cfg.train.d_steps, cfg.data.hflip) == ("nonsaturating", 1, False)
    d_class = type(build_discriminator(cfg.model))
    calls = []
    hook = torch.nn.modules.module.register_module_forward_hook(
        lambda module, args, out: calls.append((args[0].detach().clone(), out.detach().double().clone()))
        if isinstance(module, d_class) else None)
    try:
        result = train(cfg, run_dir=tmp_path / "r", dataset=blobs)
    finally:
        hook.remove()
    assert len(calls) == 3 * 6
    steps = [calls[3 * k:3 * k + 3] for k in range(6)]
    reals = blobs.images.float() / 127.5 - 1
    for (real, _), (fake, _), (g_fake, _) in steps:
        assert all(any(torch.equal(row, image) for image in reals) for row in real)  # real images...
        assert torch.equal(fake, g_fake)  # ...and one generator forward serving both updates
    epoch = torch.cat([real for (real, _), _, _ in steps])  # 6 batches of 8: each of the 48 blobs once
    assert sorted(map(tuple, epoch.flatten(1).tolist())) == sorted(map(tuple, reals.flatten(1).tolist()))
    per_step = [{"d_real": torch.sigmoid(r).mean(), "d_fake": torch.sigmoid(f).mean(),
                 "loss_d": F.softplus(-r).mean() + F.softplus(f).mean(),
                 "loss_g": F.softplus(-g).mean(), "d_fake_g": torch.sigmoid(g).mean()}
                for (_, r), (_, f), (_, g) in steps]
    records = [json.loads(line) for line in (result.run_dir / "stats.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [2, 4, 6]
    for i, record in enumerate(records):
        for key in ("d_real", "d_fake", "loss_d", "loss_g", "d_fake_g"):
            expected = float((per_step[2 * i][key] + per_step[2 * i + 1][key]) / 2)
            assert record[key] == pytest.approx(expected, abs=2e-6), (record["step"], key)


def test_snapshot_rebuilds_the_generator_alone(make_config, blobs):
    cfg = make_config()
    result = train(cfg, dataset=blobs)
    generator, info = load_snapshot(result.snapshot)
    assert info.step == 6 and info.model == cfg.model and info.dataset == "blobs"
    # The snapshot is the moving average of G (not G), its batch-norm statistics re-estimated over
    # RECALIBRATION_SAMPLES latents of the run's "recalibrate" seed: rebuilt from the file alone, it
    # computes exactly what that in-memory generator computes.
    expected = recalibrate_batchnorm(copy.deepcopy(result.generator_ema), cfg.model.latent_dim,
                                     num_samples=RECALIBRATION_SAMPLES, batch_size=256,
                                     gen=make_generator(derive_seed(cfg.train.seed, "recalibrate")))
    z = torch.randn(5, info.model.latent_dim, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.equal(generator.eval()(z), expected.eval()(z))
        assert not torch.equal(generator(z), result.generator.eval()(z))  # the average, not the last G
    _assert_bit_identical(generator.state_dict(), expected.state_dict())
    assert torch.equal(generate(generator, z), generate(expected, z))


def test_resume_refuses_a_different_architecture(make_config, blobs, tmp_path):
    train(make_config(), run_dir=tmp_path / "r", dataset=blobs, until_step=2)
    with pytest.raises(ConfigError, match="model config differs"):
        train(make_config("model.g_width=16"), resume=tmp_path / "r", dataset=blobs)


def test_dataset_of_the_wrong_shape_or_too_small_is_refused(make_config, blobs, tmp_path):
    with pytest.raises(ConfigError, match="set model.resolution"):
        train(make_config("model.resolution=32"), run_dir=tmp_path / "a", dataset=blobs)
    with pytest.raises(DataError, match="fewer than one batch"):
        train(make_config("train.batch_size=64"), run_dir=tmp_path / "b", dataset=blobs)


def test_training_moves_the_discriminator_towards_telling_real_from_fake(make_config, blobs, tmp_path):
    # Not a quality test: after a few steps D must score real blobs above fakes on average.
    result = train(make_config("train.phases=[{steps: 30}]", "run.log_every_kimg=0.24"), run_dir=tmp_path / "r",
                   dataset=blobs)
    assert result.last_stats["d_real"] > result.last_stats["d_fake"]


def test_tensorboard_events_when_installed(make_config, blobs, tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    result = train(make_config("run.tensorboard=true"), run_dir=tmp_path / "r", dataset=blobs)
    events = list((result.run_dir / "tensorboard").glob("events.out.tfevents.*"))
    assert len(events) == 1
    accumulator = EventAccumulator(str(events[0]), size_guidance={"scalars": 0, "images": 0})
    accumulator.Reload()
    records = [json.loads(line) for line in (result.run_dir / "stats.jsonl").read_text().splitlines()]
    logged = [k for k in records[0] if k not in ("step", "kimg", "phase", "images_per_s", "wall_time_s")]
    assert set(logged) >= {"loss_d", "loss_g", "d_real", "d_fake"}
    tags = accumulator.Tags()
    assert set(tags["scalars"]) == {f"train/{k}" for k in logged} | {"speed/images_per_s"}
    for key in logged:  # the same steps and values as stats.jsonl (which rounds to 6 decimals)
        scalars = accumulator.Scalars(f"train/{key}")
        assert [s.step for s in scalars] == [r["step"] for r in records] == [2, 4, 6]
        assert [s.value for s in scalars] == pytest.approx([r[key] for r in records], abs=1e-6), key
    speeds = accumulator.Scalars("speed/images_per_s")
    assert [s.value for s in speeds] == pytest.approx([r["images_per_s"] for r in records], abs=0.01)
    assert tags["images"] == ["samples"] and [i.step for i in accumulator.Images("samples")] == [0, 3, 6]


def test_packing_and_minibatch_stddev_train_and_resume_exactly(make_config, blobs, tmp_path):
    cfg = make_config("model.d_pack=2", "model.d_mbstd=2", "model.d_norm=spectral")
    whole = train(cfg, run_dir=tmp_path / "whole", dataset=blobs)
    train(cfg, run_dir=tmp_path / "parts", dataset=blobs, until_step=3)
    resumed = train(cfg, resume=tmp_path / "parts", dataset=blobs)
    _assert_bit_identical(_state_tensors(whole.run_dir), _state_tensors(resumed.run_dir))


def test_metric_during_training_keeps_the_best_snapshot(make_config, blobs, tmp_path):
    cfg = make_config("run.metric=spectral", "run.metric_every_kimg=0.016", "run.metric_samples=16",
                      "data.source=digits")
    result = train(cfg, run_dir=tmp_path / "r", dataset=blobs)
    lines = [json.loads(x) for x in (result.run_dir / "stats.jsonl").read_text().splitlines()]
    evaluations = [x for x in lines if "metrics" in x]
    assert [x["step"] for x in evaluations] == [2, 4, 6]
    values = {x["step"]: x["metrics"]["spectral-distance"] for x in evaluations}
    best = json.loads((result.run_dir / "best.json").read_text())
    assert best["value"] == pytest.approx(min(values.values()), abs=1e-6)
    assert best["step"] == min(values, key=values.get)
    _, info = load_snapshot(result.run_dir / "snapshot-best.safetensors")
    assert info.step == best["step"]
