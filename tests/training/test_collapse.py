"""Collapse warnings: D winning outright for a sustained stretch, a collapsed sample grid; once per episode."""

from __future__ import annotations

import json

import torch

from deconvgan.training import collapse, train
from deconvgan.training.collapse import CollapseWatch

WINS = {"d_real": 0.999, "d_fake": 0.001}
EVEN = {"d_real": 0.6, "d_fake": 0.4}


def test_d_winning_is_reported_once_per_sustained_episode():
    watch = CollapseWatch(batch_size=1000)  # one kimg per step
    assert [watch.observe(s, WINS) for s in (1, 3, 5)] == [None, None, None]  # 4 kimg: not yet sustained
    first = watch.observe(6, WINS)
    assert first is not None and "since step 1 (5 kimg" in first and "loss.r1_gamma" in first
    assert "augment.kind=ada" in first and "\n" not in first
    assert watch.observe(9, WINS) is None  # the same episode
    assert watch.observe(10, {"loss_g": 1.0, "phase": "g-only"}) is None  # no D statistics: no judgement
    assert watch.observe(11, EVEN) is None  # the episode ends
    assert [watch.observe(s, WINS) for s in (12, 16)] == [None, None]
    assert "since step 12" in watch.observe(17, WINS)  # a new episode, a new warning


def test_a_grid_of_one_repeated_image_is_reported_once():
    watch = CollapseWatch(batch_size=64)
    varied = torch.randint(0, 256, (16, 1, 8, 8), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    same = varied[:1].repeat(16, 1, 1, 1)
    assert watch.grid(0, same) is None  # step 0: an untrained generator
    assert watch.grid(10, varied) is None
    message = watch.grid(20, same)
    assert message is not None and "per-pixel std across its 16 images 0.0000" in message
    assert watch.grid(30, same) is None and watch.grid(40, varied) is None
    assert watch.grid(50, same) is not None


def test_the_warnings_reach_log_and_stats(make_config, blobs, tmp_path, monkeypatch):
    # bounds every interval meets, and a short sustain: the wiring is what is tested here
    monkeypatch.setattr(collapse, "D_REAL_ABOVE", -1.0)
    monkeypatch.setattr(collapse, "D_FAKE_BELOW", 2.0)
    monkeypatch.setattr(collapse, "SUSTAIN_KIMG", 0.03)  # 4 steps of 8 images
    monkeypatch.setattr(collapse, "GRID_STD_BELOW", 2.0)
    train(make_config("train.phases=[{steps: 9}]"), run_dir=tmp_path / "run", dataset=blobs)
    records = [json.loads(line) for line in (tmp_path / "run" / "stats.jsonl").read_text().splitlines()]
    warnings = [(r["warning"], r["step"]) for r in records if "warning" in r]
    assert warnings == [("grid-collapsed", 3), ("discriminator-wins", 6)]
    log = (tmp_path / "run" / "log.txt").read_text()
    assert log.count("warning: the discriminator has won outright since step 2") == 1
