"""The training loop: determinism, exact resume, the phase schedule and what a run directory holds."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

from deconvgan.checkpoint import load_snapshot
from deconvgan.errors import ConfigError, DataError
from deconvgan.sampling import generate
from deconvgan.training import train


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
    ("train.phases=[{steps: 5}, {name: g-only, steps: 4, train_d: false}]",),
    # several D steps per G step, a penalty drawing its own randomness, flips
    ("train.d_steps=2", "loss.kind=wasserstein", "model.d_norm=none", "data.hflip=true", "loss.r1_gamma=1.0"),
])
@pytest.mark.parametrize("stop_at", [2, 5, 7])
def test_stop_and_resume_is_bit_identical_to_one_run(make_config, blobs, tmp_path, overrides, stop_at):
    cfg = make_config(*overrides)
    total = cfg.train.total_steps
    if stop_at >= total:
        pytest.skip("stop point beyond this schedule")
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
    assert 0 < records[-1]["d_real"] < 1
    # The next run gets the next number.
    assert train(make_config(), dataset=blobs).run_dir.name == "00001-tiny"


def test_snapshot_rebuilds_the_generator_alone(make_config, blobs):
    result = train(make_config(), dataset=blobs)
    generator, info = load_snapshot(result.snapshot)
    assert info.step == 6 and info.model.resolution == 16 and info.dataset == "blobs"
    images = generate(generator, torch.randn(3, info.model.latent_dim))
    assert images.shape == (3, 1, 16, 16) and images.dtype == torch.uint8


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
    result = train(make_config("run.tensorboard=true"), run_dir=tmp_path / "r", dataset=blobs)
    events = list((result.run_dir / "tensorboard").glob("events.out.tfevents.*"))
    assert events and events[0].stat().st_size > 0


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
