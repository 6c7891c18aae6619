"""Two gloo processes on the CPU, started the way torchrun starts them.

(i) after k steps both ranks hold identical weights; (ii) with synchronised batch norm, 2 ranks of
per-rank batch b match one process of batch 2b to float tolerance; (iii) a rank killed mid-run
makes the run fail loudly within a timeout, and the last checkpoint is intact and resumable.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from deconvgan.checkpoint import load_training_state
from deconvgan.configio import config_to_yaml
from deconvgan.data import ImageDataset
from deconvgan.training import train

pytestmark = pytest.mark.distributed
WORKER = Path(__file__).with_name("dist_worker.py")


def _launch(tmp_path: Path, cfg, images: torch.Tensor, *, token: str = "") -> subprocess.Popen:
    (tmp_path / "config.yaml").write_text(config_to_yaml(cfg))
    save_file({"images": images}, str(tmp_path / "images.safetensors"))
    env = dict(os.environ, OMP_NUM_THREADS="1", OMP_WAIT_POLICY="PASSIVE", DECONVGAN_TEST_TOKEN=token)
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
               str(WORKER), str(tmp_path / "config.yaml"), str(tmp_path / "images.safetensors"),
               str(tmp_path / "run"), str(tmp_path / "weights")]
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _params(weights: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    # parameters only: batch-norm running statistics are per rank unless synchronised
    return {k: v for k, v in weights.items() if "running_" not in k and "num_batches" not in k}


def test_two_ranks_agree_and_match_one_process_of_twice_the_batch(make_config, blobs, tmp_path):
    cfg = make_config("train.batch_size=8", "train.phases=[{steps: 4}]", "train.sync_batchnorm=true",
                      "data.hflip=true", "run.num_threads=1",
                      # a metric during training: each rank generates its share of 15 seeds, rank 0 gathers
                      "data.source=digits", "run.metric=spectral", "run.metric_every_kimg=0.016",
                      "run.metric_samples=15")
    process = _launch(tmp_path, cfg, blobs.images)
    output, _ = process.communicate(timeout=240)
    assert process.returncode == 0, output
    rank0 = load_file(str(tmp_path / "weights.rank0.safetensors"))
    rank1 = load_file(str(tmp_path / "weights.rank1.safetensors"))
    # (i) identical weights on both ranks (synchronised statistics make the buffers equal too)
    for key in rank0:
        assert torch.equal(rank0[key], rank1[key]), key
    # (ii) one process with the same global batch of 8 (2 x 4) follows the same trajectory
    single = train(cfg, run_dir=tmp_path / "single", dataset=blobs)
    expected = {f"G.{k}": v for k, v in single.generator.state_dict().items()}
    expected.update({f"D.{k}": v for k, v in single.discriminator.state_dict().items()})
    for key, value in _params(expected).items():
        assert torch.allclose(rank0[key], value, rtol=1e-4, atol=1e-5), key
    # the sharded evaluation gives what one process computes (a set metric of near-equal weights)
    def evaluations(run_dir):
        lines = [json.loads(x) for x in (run_dir / "stats.jsonl").read_text().splitlines()]
        return {x["step"]: x["metrics"]["spectral-distance"] for x in lines if "metrics" in x}

    two, one = evaluations(tmp_path / "run"), evaluations(single.run_dir)
    assert two.keys() == one.keys() == {2, 4}
    for step in two:
        assert two[step] == pytest.approx(one[step], rel=1e-3, abs=1e-4)
    # only rank 0 wrote outputs, and into a single run directory
    assert (tmp_path / "run" / "snapshot.safetensors").is_file()
    assert load_training_state(tmp_path / "run" / "training-state.safetensors").world_size == 2


def _rank_pid(token: str, rank: int) -> int | None:
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if f"DECONVGAN_TEST_TOKEN={token}".encode() in environ and f"RANK={rank}".encode() in environ \
                and b"TORCHELASTIC_RUN_ID" in b"".join(environ) and (entry / "cmdline").read_bytes().find(
                    b"dist_worker.py") >= 0:
            return int(entry.name)
    return None


@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="finds the rank's process through /proc")
def test_a_killed_rank_fails_the_run_loudly_and_the_checkpoint_resumes(make_config, blobs, tmp_path):
    cfg = make_config("train.batch_size=8", "train.phases=[{steps: 100000}]", "run.snapshot_every_kimg=0.04",
                      "run.sample_every_kimg=1000", "run.num_threads=1", "run.dist_timeout_s=30")
    token = uuid.uuid4().hex
    process = _launch(tmp_path, cfg, blobs.images, token=token)
    state_path = tmp_path / "run" / "training-state.safetensors"
    deadline = time.monotonic() + 180
    while not state_path.exists():
        assert process.poll() is None, process.communicate()[0]
        assert time.monotonic() < deadline, "no checkpoint appeared"
        time.sleep(0.2)
    time.sleep(1.0)  # let training go on past the first checkpoint
    pid = _rank_pid(token, 1)
    assert pid is not None, "rank 1 not found"
    killed_at = time.monotonic()
    os.kill(pid, signal.SIGKILL)
    output, _ = process.communicate(timeout=90)  # hanging here would fail the test
    assert process.returncode != 0, output
    assert time.monotonic() - killed_at < 60
    # the checkpoint is intact, and the run resumes (here on one process) from it
    state = load_training_state(state_path)
    assert state.step > 0 and state.world_size == 2
    resumed_cfg = cfg.__class__(**{**cfg.__dict__, "train": cfg.train.__class__(
        **{**cfg.train.__dict__, "phases": (cfg.train.phases[0].__class__(steps=state.step + 2),)})})
    result = train(resumed_cfg, resume=tmp_path / "run", dataset=ImageDataset(blobs.images, None, "blobs", None))
    assert result.step == state.step + 2
