"""The divergence guard: non-finite losses or weights stop the run (or roll it back); nothing poisoned is saved."""

from __future__ import annotations

import json
import math

import pytest
import torch
from safetensors.torch import load_file
from torch import nn

from deconvgan.checkpoint import load_snapshot, load_training_state
from deconvgan.data.crops import TextureSources
from deconvgan.errors import TrainingDiverged
from deconvgan.training import loop, train
from deconvgan.training.guard import DivergenceGuard, first_nonfinite_tensor, first_nonfinite_value


def test_first_nonfinite_value_names_the_quantity():
    assert first_nonfinite_value({"loss_d": 0.5, "phase": "adversarial", "step": 3}) is None
    assert first_nonfinite_value({"loss_d": 0.5, "loss_g": math.nan, "r1": math.inf}) == "loss_g is nan"
    assert first_nonfinite_value({"gp": -math.inf}) == "gp is -inf"


def test_first_nonfinite_tensor_names_the_module_and_the_weight():
    G, D = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2)), nn.Linear(2, 1)
    assert first_nonfinite_tensor({"generator": G, "discriminator": D, "generator average": None}) is None
    with torch.no_grad():
        G[1].running_var[1] = math.inf  # buffers count: batch-norm statistics poison eval-mode samples
    found = first_nonfinite_tensor({"generator": G, "discriminator": D})
    assert found == "generator weight 1.running_var is not finite"


def test_stop_raises_one_line_naming_the_step_and_the_fix():
    guard = DivergenceGuard({"discriminator": nn.Linear(2, 1)})
    problem = guard.check(7, {"loss_d": math.nan})
    assert problem == "step 7: loss_d is nan"
    with pytest.raises(TrainingDiverged, match=r"^training diverged at step 7: loss_d is nan; the last good training "
                                               r"state \(step 4\) and snapshot are kept: lower train.g_lr") as info:
        guard.on_divergence(problem, 4)
    assert "\n" not in str(info.value)


def test_rollback_is_allowed_max_rollbacks_times_and_halves_the_rates_each_time():
    guard = DivergenceGuard({}, policy="rollback", max_rollbacks=2, lr_factor=0.5)
    assert guard.on_divergence("step 5: x is nan", 4) == 0.5
    assert guard.on_divergence("step 5: x is nan", 4) == 0.25
    with pytest.raises(TrainingDiverged, match="diverged again at step 5: x is nan after 2 rollback"):
        guard.on_divergence("step 5: x is nan", 4)
    with pytest.raises(TrainingDiverged, match="no training state had been saved yet"):
        DivergenceGuard({}, policy="rollback", max_rollbacks=2).on_divergence("step 1: x is nan", None)


def _poison_generator_at(monkeypatch, step: int, times: int = 1) -> list[int]:
    """After generator step ``step`` (1-based), set one weight of G to NaN (``times`` times at most)."""
    calls, poisoned = [0], []
    real_update = loop.update_ema

    def update(G_ema, G, beta):
        calls[0] += 1
        if calls[0] == step and len(poisoned) < times:
            with torch.no_grad():
                next(G.parameters()).view(-1)[0] = math.nan
            poisoned.append(step)
        return real_update(G_ema, G, beta)

    monkeypatch.setattr(loop, "update_ema", update)
    return poisoned


def test_a_nan_weight_stops_the_run_and_keeps_the_last_good_state(make_config, blobs, tmp_path, monkeypatch):
    # states at steps 3 and 6 (snapshot interval 0.024 kimg = 3 steps), logs every 2 steps; NaN after step 4
    cfg = make_config("train.phases=[{steps: 9}]")
    _poison_generator_at(monkeypatch, 4)
    with pytest.raises(TrainingDiverged) as info:
        train(cfg, run_dir=tmp_path / "run", dataset=blobs)
    message = str(info.value)
    assert message.startswith("training diverged at step 4: ") and "\n" not in message
    assert "the last good training state (step 3)" in message
    state = load_training_state(tmp_path / "run" / "training-state.safetensors")  # loads: finite, checksummed
    assert state.step == 3
    generator, snapshot = load_snapshot(tmp_path / "run")
    assert snapshot.step == 3 and all(torch.isfinite(p).all() for p in generator.parameters())
    assert not (tmp_path / "run" / "snapshots" / "step-0000006.safetensors").exists()


def test_a_nan_loss_between_snapshots_is_caught_at_the_next_logged_step(make_config, blobs, tmp_path, monkeypatch):
    cfg = make_config("train.phases=[{steps: 9}]")
    real_g_step = loop._g_step
    calls = [0]

    def poisoned(D, G, opt_g, loss, fake, means, ranks, autocast):
        calls[0] += 1
        real_g_step(D, G, opt_g, loss, fake, means, ranks, autocast)
        if calls[0] == 5:
            means.add("loss_g", torch.tensor(math.inf))  # a loss that overflowed; the weights are still finite

    monkeypatch.setattr(loop, "_g_step", poisoned)
    with pytest.raises(TrainingDiverged, match=r"at step 6: loss_g is inf; the last good training state \(step 3\)"):
        train(cfg, run_dir=tmp_path / "run", dataset=blobs)


def test_rollback_reloads_the_last_good_state_with_lower_rates_and_finishes(make_config, blobs, tmp_path,
                                                                            monkeypatch):
    cfg = make_config("train.phases=[{steps: 9}]", "train.on_divergence=rollback", "train.rollback_lr_factor=0.25")
    poisoned = _poison_generator_at(monkeypatch, 5)
    result = train(cfg, run_dir=tmp_path / "run", dataset=blobs)
    assert poisoned == [5] and result.step == 9
    state = load_training_state(tmp_path / "run" / "training-state.safetensors")
    assert state.rollbacks == 1 and state.lr_scale == 0.25
    assert state.opt_g["param_groups"][0]["lr"] == pytest.approx(cfg.train.g_lr * 0.25)
    warnings = [json.loads(line) for line in (tmp_path / "run" / "stats.jsonl").read_text().splitlines()
                if "warning" in json.loads(line)]
    assert [(w["warning"], w["step"]) for w in warnings] == [("rollback", 3)]
    assert "rolled back to step 3 with learning rates x0.25" in warnings[0]["message"]
    # a resumed run keeps the lowered rates (the guard's count and scale travel in the state)
    monkeypatch.setattr(loop, "update_ema", loop.update_ema)
    again = train(make_config("train.phases=[{steps: 10}]", "train.on_divergence=rollback",
                              "train.rollback_lr_factor=0.25"), resume=tmp_path / "run", dataset=blobs)
    assert again.step == 10
    assert load_training_state(tmp_path / "run" / "training-state.safetensors").lr_scale == 0.25


def test_rollback_gives_up_after_max_rollbacks(make_config, blobs, tmp_path, monkeypatch):
    cfg = make_config("train.phases=[{steps: 9}]", "train.on_divergence=rollback", "train.max_rollbacks=1")
    _poison_generator_at(monkeypatch, 5, times=1)
    real_update = loop.update_ema  # the patched one: poisons at its 5th call; poison again after the rollback
    count = [0]

    def update(G_ema, G, beta):
        count[0] += 1
        if count[0] == 8:  # the rollback went back to step 3: this is step 6 again
            with torch.no_grad():
                next(G.parameters()).view(-1)[0] = math.nan
        return real_update(G_ema, G, beta)

    monkeypatch.setattr(loop, "update_ema", update)
    with pytest.raises(TrainingDiverged, match="diverged again at step 6: .* after 1 rollback"):
        train(cfg, run_dir=tmp_path / "run", dataset=blobs)
    assert load_training_state(tmp_path / "run" / "training-state.safetensors").step == 3


def test_the_guard_watches_texture_models_too(make_config, tmp_path, monkeypatch):
    texture = ("model.arch=spatial", "model.channels=3", "model.resolution=16", "model.levels=2", "model.g_width=8",
               "model.d_width=8", "model.local_channels=4", "model.global_channels=2", "data.source=texture-sample",
               "train.phases=[{steps: 9}]")
    y, x = torch.meshgrid(torch.arange(40), torch.arange(48), indexing="ij")
    stripes = TextureSources((torch.stack([(y + x) % 8 * 32] * 3).to(torch.uint8),), "stripes")
    _poison_generator_at(monkeypatch, 4)
    with pytest.raises(TrainingDiverged, match=r"at step 4: generator weight .* is not finite"):
        train(make_config(*texture), run_dir=tmp_path / "run", dataset=stripes)
    tensors = load_file(str(tmp_path / "run" / "training-state.safetensors"))
    assert all(torch.isfinite(t).all() for t in tensors.values() if t.is_floating_point())
