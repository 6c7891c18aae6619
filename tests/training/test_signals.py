"""Stop signals: SIGTERM, SIGUSR1 and Ctrl-C save the training state at the end of the step; resume is exact."""

from __future__ import annotations

import os
import signal

import pytest
import torch
from safetensors.torch import load_file

from deconvgan.checkpoint import load_training_state
from deconvgan.training import loop, train
from deconvgan.training.signals import StopSignals, exit_status


def test_the_first_signal_is_recorded_and_the_handlers_are_put_back():
    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGUSR1)}
    with StopSignals() as stop:
        assert stop.signum is None and stop.name is None
        os.kill(os.getpid(), signal.SIGUSR1)
        os.kill(os.getpid(), signal.SIGTERM)  # a later, different signal does not replace the first
        assert stop.name == "SIGUSR1"
    assert {s: signal.getsignal(s) for s in before} == before


def test_a_second_ctrl_c_stops_at_once():
    with StopSignals() as stop, pytest.raises(KeyboardInterrupt):
        os.kill(os.getpid(), signal.SIGINT)
        assert stop.name == "SIGINT"  # the first one only records
        os.kill(os.getpid(), signal.SIGINT)


def test_exit_status_is_what_a_shell_reports_for_the_signal():
    assert (exit_status(signal.SIGINT), exit_status(signal.SIGTERM), exit_status(signal.SIGUSR1)) == (130, 143, 138)


def _signal_during_step(monkeypatch, step: int, signum: int) -> None:
    """Deliver ``signum`` in the middle of generator step ``step`` (1-based), between D's and G's update."""
    real_g_step, calls = loop._g_step, [0]

    def g_step(*args, **kwargs):
        calls[0] += 1
        if calls[0] == step:
            os.kill(os.getpid(), signum)
        real_g_step(*args, **kwargs)

    monkeypatch.setattr(loop, "_g_step", g_step)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGUSR1])
def test_a_signal_saves_the_state_at_the_end_of_the_step_and_resume_is_bit_identical(
        make_config, blobs, tmp_path, monkeypatch, signum):
    cfg = make_config("train.phases=[{steps: 8}]", "loss.r1_gamma=1.0", "data.hflip=true")
    whole = train(cfg, run_dir=tmp_path / "whole", dataset=blobs)
    _signal_during_step(monkeypatch, 5, signum)  # 5: not a snapshot step (3, 6) nor a logged one (2, 4, 6)
    stopped = train(cfg, run_dir=tmp_path / "parts", dataset=blobs)
    assert stopped.interrupted and stopped.step == 5 and stopped.stop_signal == signal.Signals(signum).name
    assert load_training_state(tmp_path / "parts" / "training-state.safetensors").step == 5
    assert f"{signal.Signals(signum).name} at step 5" in (tmp_path / "parts" / "log.txt").read_text()
    monkeypatch.undo()
    resumed = train(cfg, resume=tmp_path / "parts", dataset=blobs)
    assert resumed.step == whole.step == 8
    a, b = (load_file(str(p / "training-state.safetensors")) for p in (tmp_path / "whole", tmp_path / "parts"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_a_training_state_is_written_by_time_as_well_as_by_kimg(make_config, blobs, tmp_path, monkeypatch):
    saved = []
    real_save = loop.checkpoint.save_training_state
    monkeypatch.setattr(loop.checkpoint, "save_training_state",
                        lambda path, state: (saved.append(state.step), real_save(path, state)))
    # snapshots only at the end; a state at every logged step (every 2 steps) as the clock is always due
    train(make_config("train.phases=[{steps: 7}]", "run.snapshot_every_kimg=100", "run.state_every_minutes=1e-9"),
          run_dir=tmp_path / "timed", dataset=blobs)
    assert saved == [2, 4, 6, 7]
    saved.clear()
    train(make_config("train.phases=[{steps: 7}]", "run.snapshot_every_kimg=100", "run.state_every_minutes=null"),
          run_dir=tmp_path / "kimg", dataset=blobs)
    assert saved == [7]


def test_sigterm_during_a_metric_evaluation_saves_after_it_and_resumes_exactly(make_config, tmp_path, monkeypatch):
    from deconvgan.training import evaluation

    cfg = make_config("train.phases=[{steps: 8}]", "run.metric=spectral", "run.metric_every_kimg=0.032",
                      "run.metric_samples=16")  # an evaluation every 4 steps, on the embedded digits
    train(cfg, run_dir=tmp_path / "whole")
    real_call, calls = evaluation.TrainingMetric.__call__, [0]

    def call(self, generator):
        calls[0] += 1
        if calls[0] == 1:  # the evaluation at step 4
            os.kill(os.getpid(), signal.SIGTERM)
        return real_call(self, generator)

    monkeypatch.setattr(evaluation.TrainingMetric, "__call__", call)
    stopped = train(cfg, run_dir=tmp_path / "parts")
    assert stopped.stop_signal == "SIGTERM" and stopped.step == 5  # the evaluation ends step 4; 5 is the next end
    assert "metrics" in (tmp_path / "parts" / "stats.jsonl").read_text()  # the evaluation finished first
    monkeypatch.undo()
    train(cfg, resume=tmp_path / "parts")
    a, b = (load_file(str(p / "training-state.safetensors")) for p in (tmp_path / "whole", tmp_path / "parts"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
