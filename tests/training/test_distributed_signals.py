"""Under torchrun a stop signal to any one rank stops every rank at the same step, with the state saved."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from deconvgan.checkpoint import load_training_state
from deconvgan.configio import config_to_yaml

pytestmark = [pytest.mark.distributed, pytest.mark.slow]
WORKER = Path(__file__).with_name("dist_worker.py")  # trains the config on the images, saves each rank's weights


def _launch(tmp_path: Path, cfg, images: torch.Tensor) -> subprocess.Popen:
    (tmp_path / "config.yaml").write_text(config_to_yaml(cfg))
    save_file({"images": images}, str(tmp_path / "images.safetensors"))
    env = dict(os.environ, OMP_NUM_THREADS="1", OMP_WAIT_POLICY="PASSIVE")
    return subprocess.Popen([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                             str(WORKER), str(tmp_path / "config.yaml"), str(tmp_path / "images.safetensors"),
                             str(tmp_path / "run"), str(tmp_path / "weights")],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)  # a process group: a hung run is killed whole


def _worker_of_rank(parent: int, rank: int) -> int:
    """The pid of torchrun's child process whose RANK is ``rank`` (Linux /proc)."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            env = (entry / "environ").read_bytes().split(b"\0")
        except (OSError, IndexError, ValueError):
            continue
        if ppid == parent and f"RANK={rank}".encode() in env:
            return int(entry.name)
    raise AssertionError(f"no worker of rank {rank} under {parent}")


def test_sigterm_to_one_rank_stops_both_at_the_same_step(make_config, blobs, tmp_path):
    if not Path("/proc/self/environ").exists():
        pytest.skip("finds the ranks' processes through /proc")
    cfg = make_config("train.batch_size=8", "train.phases=[{steps: 400}]", "run.num_threads=1",
                      "run.snapshot_every_kimg=100", "run.sample_every_kimg=100", "run.dist_timeout_s=30")
    process = _launch(tmp_path, cfg, blobs.images)
    try:
        _stop_rank_one_and_check(process, tmp_path)
    finally:
        if process.poll() is None:  # a rank left waiting for the other: kill the whole group
            os.killpg(process.pid, signal.SIGKILL)
            process.communicate()


def _stop_rank_one_and_check(process: subprocess.Popen, tmp_path: Path) -> None:
    stats, deadline = tmp_path / "run" / "stats.jsonl", time.monotonic() + 120
    while not (stats.is_file() and len(stats.read_text().splitlines()) >= 2):
        assert process.poll() is None and time.monotonic() < deadline, process.communicate()[0][-3000:]
        time.sleep(0.05)
    os.kill(_worker_of_rank(process.pid, 1), signal.SIGTERM)  # rank 1 only: rank 0 must learn of it
    output, _ = process.communicate(timeout=120)
    assert process.returncode == 0, output[-3000:]
    step = load_training_state(tmp_path / "run" / "training-state.safetensors").step
    assert 0 < step < 400 and f"SIGTERM at step {step}" in (tmp_path / "run" / "log.txt").read_text()
    rank0 = load_file(str(tmp_path / "weights.rank0.safetensors"))
    rank1 = load_file(str(tmp_path / "weights.rank1.safetensors"))
    for key in rank0:  # the same step on both ranks: the same parameters
        if "running_" not in key and "num_batches" not in key:
            assert torch.equal(rank0[key], rank1[key]), key
