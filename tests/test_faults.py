"""Fault injection: kill -9 at seeded moments (inside writes too), SIGTERM from the command line, a full disk.

After every fault each file of the run loads or is a temporary file the next start removes, and
continuing the run gives bit for bit the weights of a run that was never disturbed. Subprocess cases
cost about 3 s each (a Python start); the default suite runs a few, ``-m slow`` runs 20 seeded moments.
"""

from __future__ import annotations

import dataclasses
import errno
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file

from deconvgan import checkpoint
from deconvgan.checkpoint import load_snapshot, load_training_state, read_format
from deconvgan.cli import main
from deconvgan.configio import config_to_yaml
from deconvgan.runfiles import STATE_FILE
from deconvgan.training import train

# Runs in a subprocess: dies with os._exit (no cleanup at all, like kill -9) half-way through the N-th tensor
# file written ("mid-write") or just before the N-th rename onto a tensor file ("before-rename"); the command
# line runs as usual.
KILLER = """
import os, sys
from deconvgan import checkpoint
from deconvgan.cli import main
where, n = sys.argv[1], int(sys.argv[2])
events = {"mid-write": 0, "before-rename": 0}
real_save, real_replace = checkpoint.save_file, os.replace
def save_file(tensors, filename, metadata=None):
    events["mid-write"] += 1
    real_save(tensors, filename, metadata=metadata)
    if where == "mid-write" and events[where] == n:
        with open(filename, "r+b") as f:
            f.truncate(os.path.getsize(filename) // 2)
        os._exit(137)
def replace(src, dst):
    if str(dst).endswith(".safetensors"):
        events["before-rename"] += 1
        if where == "before-rename" and events[where] == n:
            os._exit(137)
    real_replace(src, dst)
checkpoint.save_file, os.replace = save_file, replace
sys.exit(main(sys.argv[3:]))
"""

ENV = {**os.environ, "OMP_NUM_THREADS": "1", "OMP_WAIT_POLICY": "PASSIVE"}


@pytest.fixture
def faulty_config(make_config):
    # digits (embedded: the subprocess needs no data); a state every 5 steps, grids every 10, logs every 2
    return make_config("train.phases=[{steps: 24}]", "train.batch_size=16", "run.snapshot_every_kimg=0.08",
                       "run.sample_every_kimg=0.16", "run.log_every_kimg=0.032", "run.num_threads=1")


def _write_events(cfg, tmp_path: Path, monkeypatch) -> tuple[dict[str, torch.Tensor], int]:
    """The undisturbed run's final training state, and how many renames onto tensor files it makes."""
    renames, real_replace = [0], os.replace

    def replace(src, dst):
        renames[0] += str(dst).endswith(".safetensors")
        real_replace(src, dst)

    with monkeypatch.context() as patch:
        patch.setattr(os, "replace", replace)
        result = train(cfg, run_dir=tmp_path / "reference")
    return load_file(str(result.run_dir / STATE_FILE)), renames[0]


def _every_file_loads_or_is_temporary(run_dir: Path) -> None:
    for path in run_dir.rglob("*"):
        if not path.is_file() or path.name.endswith(".tmp"):
            continue
        if path.suffix == ".safetensors":
            if read_format(path) == checkpoint.STATE_FORMAT:
                load_training_state(path)
            else:
                load_snapshot(path)


def _continue_to_the_end(cfg, run_dir: Path) -> dict[str, torch.Tensor]:
    if (run_dir / STATE_FILE).is_file():
        train(cfg, resume=run_dir)
    else:  # killed before its first training state: start again in the same directory
        train(cfg, run_dir=run_dir)
    assert not list(run_dir.rglob("*.tmp")), "the start removes what killed writes left"
    return load_file(str(run_dir / STATE_FILE))


def _killed_run(cfg, tmp_path: Path, where: str, n: int) -> Path:
    config = tmp_path / "config.yaml"
    config.write_text(config_to_yaml(cfg))
    runs = Path(cfg.run.runs_dir)
    proc = subprocess.run([sys.executable, "-c", KILLER, where, str(n), "train", str(config)],
                          env=ENV, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 137, proc.stderr[-2000:]
    (run_dir,) = runs.iterdir()
    return run_dir


def _assert_same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def _moments(total: int, count: int) -> list[tuple[str, int]]:
    rng = random.Random(11)  # seeded: the same moments every time; at most `total` tensor files or renames
    return [(rng.choice(["mid-write", "before-rename"]), rng.randint(1, total // 2)) for _ in range(count)]


@pytest.mark.parametrize("where", ["mid-write", "before-rename"])
def test_killed_inside_a_write_every_file_loads_and_resume_is_bit_identical(faulty_config, tmp_path, monkeypatch,
                                                                             where):
    reference, total = _write_events(faulty_config, tmp_path, monkeypatch)
    # mid-write: the 4th tensor file written (step 10's state); before-rename: the last state's rename but one
    run_dir = _killed_run(faulty_config, tmp_path, where, 4 if where == "mid-write" else total - 2)
    assert list(run_dir.rglob(".*.tmp")), "the kill left its temporary file (else nothing was tested)"
    _every_file_loads_or_is_temporary(run_dir)
    _assert_same(reference, _continue_to_the_end(faulty_config, run_dir))


@pytest.mark.slow
def test_twenty_seeded_kills_inside_writes(faulty_config, tmp_path, monkeypatch):
    reference, total = _write_events(faulty_config, tmp_path, monkeypatch)
    for i, (where, n) in enumerate(_moments(total, 20)):
        cfg_dir = tmp_path / f"kill{i}"
        cfg_dir.mkdir()
        cfg = dataclasses.replace(faulty_config, run=dataclasses.replace(faulty_config.run,
                                                                         runs_dir=str(cfg_dir / "runs")))
        run_dir = _killed_run(cfg, cfg_dir, where, n)
        _every_file_loads_or_is_temporary(run_dir)
        _assert_same(reference, _continue_to_the_end(cfg, run_dir))


def _start(cfg, tmp_path: Path, *extra: str) -> subprocess.Popen:
    config = tmp_path / "config.yaml"
    config.write_text(config_to_yaml(cfg))
    return subprocess.Popen([sys.executable, "-m", "deconvgan", "train", str(config), *extra], env=ENV,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for_training(runs: Path, proc: subprocess.Popen, min_lines: int = 1) -> Path:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        stats = list(runs.glob("*/stats.jsonl"))
        if stats and len(stats[0].read_text().splitlines()) >= min_lines:
            return stats[0].parent
        assert proc.poll() is None, proc.communicate()[1][-2000:]
        time.sleep(0.02)
    raise AssertionError("the run did not start training within 60 s")


def test_sigterm_from_the_command_line_then_resume_latest_is_bit_identical(make_config, tmp_path):
    # long enough that the signal arrives mid-run: it comes at about step 5 of 80
    cfg = make_config("train.phases=[{steps: 80}]", "train.batch_size=16", "run.snapshot_every_kimg=100",
                      "run.sample_every_kimg=100", "run.log_every_kimg=0.032", "run.num_threads=1")
    proc = _start(cfg, tmp_path)
    run_dir = _wait_for_training(Path(cfg.run.runs_dir), proc, min_lines=2)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err[-2000:]
    lines = [line for line in err.splitlines() if line.strip()]
    assert lines[-1].startswith("SIGTERM: stopped at step ") and "Traceback" not in err
    stopped = load_training_state(run_dir / STATE_FILE)
    assert 0 < stopped.step < 80
    assert main(["train", "--resume", "latest", "--runs-dir", cfg.run.runs_dir, "--no-progress"]) == 0
    whole = train(cfg, run_dir=tmp_path / "whole")
    _assert_same(load_file(str(whole.run_dir / STATE_FILE)), load_file(str(run_dir / STATE_FILE)))


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(5))
def test_sigkill_at_a_random_moment_then_resume_is_bit_identical(make_config, tmp_path, seed):
    cfg = make_config("train.phases=[{steps: 200}]", "train.batch_size=16", "run.snapshot_every_kimg=0.08",
                      "run.sample_every_kimg=0.16", "run.log_every_kimg=0.032", "run.num_threads=1")
    proc = _start(cfg, tmp_path)
    run_dir = _wait_for_training(Path(cfg.run.runs_dir), proc)
    time.sleep(random.Random(seed).uniform(0.0, 1.0))
    proc.kill()
    proc.communicate(timeout=60)
    _every_file_loads_or_is_temporary(run_dir)
    resumed = _continue_to_the_end(cfg, run_dir)
    _assert_same(load_file(str(train(cfg, run_dir=tmp_path / "whole").run_dir / STATE_FILE)), resumed)


def test_a_full_disk_keeps_the_previous_state_and_stops_with_one_line(make_config, tmp_path, monkeypatch, capsys):
    runs = tmp_path / "runs"
    argv = ["train", "--runs-dir", str(runs), "--no-progress", "--device", "cpu", "--set", "model.g_width=8",
            "--set", "model.d_width=8", "--set", "model.max_width=16", "--set", "model.latent_dim=8",
            "--set", "run.grid_size=4", "--set", "run.tensorboard=false", "--set", "train.batch_size=8",
            "--set", "run.snapshot_every_kimg=0.024", "--set", "train.phases=[{steps: 7}]"]
    calls, real_save = [0], checkpoint.save_file

    def save_file(tensors, filename, metadata=None):  # the 4th tensor file (step 6's state) fills the disk
        calls[0] += 1
        if calls[0] == 4:
            Path(filename).write_bytes(b"\0" * 100)  # what safetensors raises when the disk is full:
            raise SafetensorError(f'Error while serializing: I/O error: No space left on device (os error '
                                  f'{errno.ENOSPC}) at path "{filename}"')
        real_save(tensors, filename, metadata=metadata)

    monkeypatch.setattr(checkpoint, "save_file", save_file)
    assert main(argv) == 2
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    (run_dir,) = runs.iterdir()
    assert [line for line in lines if "error" in line or "Traceback" in line] == lines[-1:]
    assert lines[-1].startswith(f"error: {run_dir / STATE_FILE}: could not write it (No space left on device); the "
                                "previous version, if any, is intact: free some space")
    assert load_training_state(run_dir / STATE_FILE).step == 3  # the previous state survives
    assert not list(run_dir.rglob("*.tmp"))


def test_a_failed_tensor_write_is_the_oserror_it_is(tmp_path):
    # safetensors reports I/O failures as SafetensorError: the real message is turned into an OSError, which
    # the atomic writer reports in one line
    with pytest.raises(OSError) as info:
        checkpoint._save_file({"a": torch.zeros(3)}, tmp_path / "missing" / "x.safetensors", {})
    assert info.value.errno == errno.ENOENT
    from deconvgan.errors import OutputError

    (tmp_path / "file").write_text("")
    with pytest.raises(OutputError, match=r"snap.safetensors: could not write it \(File exists\)"):
        checkpoint.save_snapshot(tmp_path / "file" / "snap.safetensors", torch.nn.Linear(1, 1),
                                 checkpoint.ModelConfig())
