"""Classes and ADA across two gloo processes: labels and augmentation draws are made for the global batch."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from deconvgan.configio import config_to_yaml
from deconvgan.data import ImageDataset
from deconvgan.training import train
from tests.conftest import blob_images

pytestmark = [pytest.mark.distributed, pytest.mark.slow]
WORKER = Path(__file__).with_name("dist_worker_classes.py")


def test_two_ranks_with_classes_and_ada_match_one_process_of_twice_the_batch(make_config, tmp_path):
    images = blob_images()
    labels = images.flatten(1).argmax(1) % 3
    cfg = make_config("model.num_classes=3", "augment.kind=ada", "augment.ada_interval=1", "augment.ada_kimg=0.04",
                      "augment.ada_target=-0.99", "train.batch_size=8", "train.phases=[{steps: 4}]",
                      "train.sync_batchnorm=true", "data.hflip=true", "run.num_threads=1")
    (tmp_path / "config.yaml").write_text(config_to_yaml(cfg))
    save_file({"images": images, "labels": labels}, str(tmp_path / "data.safetensors"))
    env = dict(os.environ, OMP_NUM_THREADS="1", OMP_WAIT_POLICY="PASSIVE")
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                           str(WORKER), str(tmp_path / "config.yaml"), str(tmp_path / "data.safetensors"),
                           str(tmp_path / "run"), str(tmp_path / "weights")],
                          env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stdout + done.stderr
    rank0 = load_file(str(tmp_path / "weights.rank0.safetensors"))
    single = train(cfg, run_dir=tmp_path / "single",
                   dataset=ImageDataset(images, labels, "blobs", 3))
    expected = {f"G.{k}": v for k, v in single.generator.state_dict().items()}
    expected.update({f"D.{k}": v for k, v in single.discriminator.state_dict().items()})
    for key, value in expected.items():
        if "running_" not in key and "num_batches" not in key:
            assert torch.allclose(rank0[key], value, rtol=1e-4, atol=1e-5), key

    def p(run_dir):
        with safe_open(str(run_dir / "training-state.safetensors"), framework="pt") as f:
            return json.loads(f.metadata()["augment"])["p"]

    # +-0.2 per step from the signs of every rank's reals (one rank's alone would differ)
    assert p(tmp_path / "run") == p(single.run_dir) and p(single.run_dir) >= 0.4
