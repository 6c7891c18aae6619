"""Evaluate a texture model (``model.arch: spatial``) against crops of its training photograph(s).

Generated samples are the top-left training-size window of each seed's texture (seeds ``seed ..
seed + N - 1``); real samples are seeded random crops of the same size from the sources (no flips).
The metrics (:func:`~deconvgan.metrics.diversity.texture_report`): SIFID, diversity of both sets,
spectral distance and the checkerboard peak; and the seam score of whole tiles, both as the user
gets them (tileable, ``seam``) and as a window of the unbounded texture (``seam-unbounded``, which
shows how visible the seam would be without tiling: well above 1 for any real texture).
"""

from __future__ import annotations

import torch
from torch import nn

from deconvgan.config import DataConfig, ModelConfig
from deconvgan.errors import ConfigError
from deconvgan.seeds import derive_seed, make_generator

TEXTURE_METRICS = ("sifid", "diversity", "seam", "spectral")
DEFAULT_TEXTURE_SAMPLES = 64  # generated windows and real crops: SIFID is per pair, 64 pairs take seconds
SEAM_TILES = 16  # whole tiles (of different seeds) per seam score: each holds one seam row, a small sample
SEAM_TILE_CELLS = 32  # their side in field cells (512 px with 4 levels): large enough to look like a texture


def real_crops(data_cfg: DataConfig, model: ModelConfig, count: int, seed: int) -> torch.Tensor:
    """uint8 ``[count, C, R, R]``: seeded random crops of the texture sources at the training size."""
    import dataclasses

    from deconvgan.data.crops import RandomCrops, load_texture_sources

    sources = load_texture_sources(dataclasses.replace(data_cfg, hflip=False, rot90=False), model.channels,
                                   model.resolution)
    crops = RandomCrops(sources, model.resolution, count, torch.device("cpu"))
    batch = crops.get(0, make_generator(derive_seed(seed, "evaluation-crops")))  # float in [-1, 1]
    return batch.add(1).mul(127.5).round().clamp(0, 255).to(torch.uint8)


def evaluate_texture(generator: nn.Module, model: ModelConfig, data_cfg: DataConfig, *,
                     metrics: tuple[str, ...] = TEXTURE_METRICS, num_generated: int = DEFAULT_TEXTURE_SAMPLES,
                     num_real: int = DEFAULT_TEXTURE_SAMPLES, seed: int = 0) -> dict[str, float]:
    """Texture metrics of ``generator`` (eval mode) against crops of ``data_cfg``'s sources -> flat dict.

    ``metrics``: names from :data:`TEXTURE_METRICS` (:func:`~deconvgan.metrics.evaluate.parse_metrics`
    with ``allowed=TEXTURE_METRICS`` validates a user's list).
    """
    from deconvgan.images import to_uint8
    from deconvgan.metrics.diversity import texture_report
    from deconvgan.metrics.evaluate import parse_metrics
    from deconvgan.metrics.seams import seam_score
    from deconvgan.models.fuse import fuse_for_inference
    from deconvgan.tiles import generate_texture, sample_textures

    metrics = parse_metrics(metrics, TEXTURE_METRICS)
    for key, value in (("num_generated", num_generated), ("num_real", num_real)):
        if value < 2:  # diversity compares pairs; SIFID needs one pair at least
            raise ConfigError(f"{key}={value} must be >= 2 for texture metrics")
    seeds = list(range(seed, seed + num_generated))
    fused = fuse_for_inference(generator)
    fake = sample_textures(fused, seeds, model.resolution, tileable=model.tileable, fuse=False)  # [N, C, R, R]
    real = real_crops(data_cfg, model, num_real, seed)
    side = SEAM_TILE_CELLS * fused.scale
    tile_seeds = seeds[:SEAM_TILES]
    tiles = [to_uint8(generate_texture(fused, s, side, side, tileable=True)[None])[0] for s in tile_seeds]
    report = texture_report(fake, real, tiles)
    report["seam-unbounded"] = sum(
        seam_score(to_uint8(generate_texture(fused, s, side, side)[None])[0]) for s in tile_seeds
    ) / len(tile_seeds)
    keep = {"sifid": ("sifid",), "diversity": ("diversity", "diversity-real"), "seam": ("seam", "seam-unbounded"),
            "spectral": ("spectral", "periodic", "periodic-real")}
    return {key: report[key] for name in metrics for key in keep[name] if key in report}
