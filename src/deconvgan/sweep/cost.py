"""What a row costs: parameters and FLOPs of its networks, and its training speed from ``stats.jsonl``.

FLOPs are counted, not estimated: :class:`torch.utils.flop_counter.FlopCounterMode` records every
matmul and convolution of one eval-mode forward pass (a multiply-add counts as 2 FLOPs;
normalisation and activations are not counted, as is usual).
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any

from deconvgan.config import ModelConfig


def parameter_count(module) -> int:
    """Trainable parameters of ``module`` (an ``nn.Module``)."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def forward_flops(module, *inputs) -> int:
    """FLOPs of one forward pass of ``module`` on ``inputs`` (counted by FlopCounterMode)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        module(*inputs)
    return counter.get_total_flops()


def model_cost(cfg: ModelConfig) -> dict[str, float]:
    """``g_params``, ``d_params``, ``g_gflop_per_image`` and ``d_gflop_per_image`` of the pair ``cfg`` builds."""
    import torch

    from deconvgan.models import build_discriminator, build_generator, example_inputs

    with torch.random.fork_rng(devices=[]):  # building draws initial weights: leave the caller's RNG alone
        G, D = build_generator(cfg).eval(), build_discriminator(cfg).eval()
    # D needs whole packs and at least one minibatch-stddev group: count a batch of those, per image
    batch = max(2, cfg.d_mbstd) * cfg.d_pack
    z, x = example_inputs(cfg, batch)
    return {
        "g_params": parameter_count(G),
        "d_params": parameter_count(D),
        "g_gflop_per_image": forward_flops(G, z) / batch / 1e9,
        "d_gflop_per_image": forward_flops(D, x) / batch / 1e9,
    }


def read_stats(path: Path) -> list[dict[str, Any]]:
    """The records of a ``stats.jsonl`` (an empty list if it is missing; a torn last line is skipped)."""
    if not path.is_file():
        return []
    records = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            records.append(json.loads(line))
        except ValueError:  # a run killed mid-write can leave half a line at the end
            continue
    return records


def training_speed(records: list[dict[str, Any]]) -> dict[str, float]:
    """``kimg`` reached, ``train_wall_s`` (all sessions, side work included) and the median ``images_per_s``
    of the logged intervals (side work excluded: the loop pauses its clock for grids and snapshots)."""
    steps = [r for r in records if "images_per_s" in r]
    if not steps:
        return {"kimg": 0.0, "train_wall_s": 0.0, "images_per_s": float("nan")}
    return {"kimg": steps[-1]["kimg"], "train_wall_s": steps[-1]["wall_time_s"],
            "images_per_s": statistics.median(r["images_per_s"] for r in steps)}
