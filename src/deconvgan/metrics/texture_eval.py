"""Evaluate a texture model (``model.arch: spatial``) against crops of its training photograph(s).

Generated samples are the top-left training-size window of each seed's texture (seeds ``seed ..
seed + N - 1``); real samples are seeded random crops of the same size from the sources (no flips).
The metrics (:func:`~deconvgan.metrics.diversity.texture_report`): SIFID, diversity of both sets,
spectral distance and the checkerboard peak; and the seam score of whole tiles, both as the user
gets them (tileable, ``seam``) and as a window of the unbounded texture (``seam-unbounded``, which
shows how visible the seam would be without tiling: well above 1 for any real texture).

A class-conditional texture model (``model.num_classes > 0``, one class per material subfolder) is
scored class by class: the same seeds drawn for class ``k`` against crops of class ``k``'s sources only,
as ``<metric>/<class name>``, and each metric's mean over the classes under its plain name.
"""

from __future__ import annotations

import torch
from torch import nn

from deconvgan.config import DataConfig, ModelConfig
from deconvgan.data.crops import TextureSources
from deconvgan.errors import ConfigError
from deconvgan.seeds import derive_seed, make_generator

TEXTURE_METRICS = ("sifid", "diversity", "seam", "spectral")
DEFAULT_TEXTURE_SAMPLES = 64  # generated windows and real crops: SIFID is per pair, 64 pairs take seconds
SEAM_TILES = 16  # whole tiles (of different seeds) per seam score: each holds one seam row, a small sample
SEAM_TILE_CELLS = 32  # their side in field cells (512 px with 4 levels): large enough to look like a texture
_KEEP = {"sifid": ("sifid",), "diversity": ("diversity", "diversity-real"), "seam": ("seam", "seam-unbounded"),
         "spectral": ("spectral", "periodic", "periodic-real")}  # result keys of each metric name


def real_crops(data_cfg: DataConfig, model: ModelConfig, count: int, seed: int) -> torch.Tensor:
    """uint8 ``[count, C, R, R]``: seeded random crops of the texture sources at the training size."""
    return _crops(_sources(data_cfg, model), model, count, seed)


def _sources(data_cfg: DataConfig, model: ModelConfig) -> TextureSources:
    import dataclasses

    from deconvgan.data.crops import load_texture_sources

    return load_texture_sources(dataclasses.replace(data_cfg, hflip=False, rot90=False), model.channels,
                                model.resolution, classes=model.num_classes > 0)


def _crops(sources: TextureSources, model: ModelConfig, count: int, seed: int) -> torch.Tensor:
    from deconvgan.data.crops import RandomCrops

    crops = RandomCrops(sources, model.resolution, count, torch.device("cpu"))
    batch = crops.get(0, make_generator(derive_seed(seed, "evaluation-crops")))  # float in [-1, 1]
    return batch.add(1).mul(127.5).round().clamp(0, 255).to(torch.uint8)


def evaluate_texture(generator: nn.Module, model: ModelConfig, data_cfg: DataConfig, *,
                     metrics: tuple[str, ...] = TEXTURE_METRICS, num_generated: int = DEFAULT_TEXTURE_SAMPLES,
                     num_real: int = DEFAULT_TEXTURE_SAMPLES, seed: int = 0, extractor=None) -> dict[str, float]:
    """Texture metrics of ``generator`` (eval mode) against crops of ``data_cfg``'s sources -> flat dict.

    ``metrics``: names from :data:`TEXTURE_METRICS` (:func:`~deconvgan.metrics.evaluate.parse_metrics`
    with ``allowed=TEXTURE_METRICS`` validates a user's list). A class-conditional model gets each key per
    class (``sifid/<name>``: ``num_generated`` windows and ``num_real`` crops of that class) and its mean
    over the classes (``sifid``). ``extractor``: the feature maps of SIFID and diversity (default: early
    Inception, :class:`~deconvgan.metrics.sifid.EarlyInceptionFeatures`).
    """
    from deconvgan.data.classes import check_classes
    from deconvgan.data.dataset import names_of_classes
    from deconvgan.metrics.evaluate import parse_metrics
    from deconvgan.models.fuse import fuse_for_inference

    metrics = parse_metrics(metrics, TEXTURE_METRICS)
    for key, value in (("num_generated", num_generated), ("num_real", num_real)):
        if value < 2:  # diversity compares pairs; SIFID needs one pair at least
            raise ConfigError(f"{key}={value} must be >= 2 for texture metrics")
    seeds = list(range(seed, seed + num_generated))
    fused = fuse_for_inference(generator)
    sources = _sources(data_cfg, model)
    if not model.num_classes:
        report = _report(fused, model, sources, seeds, num_real, seed, None, extractor)
        return {key: report[key] for name in metrics for key in _KEEP[name] if key in report}
    check_classes(sources, model.num_classes)  # the evaluation folder has the model's classes, each with images
    reports = {}
    for k, class_name in enumerate(names_of_classes(sources)):
        own = TextureSources(tuple(im for im, y in zip(sources.images, sources.labels.tolist(), strict=True) if y == k),
                             f"{sources.name}/{class_name}")
        reports[class_name] = _report(fused, model, own, seeds, num_real, seed, k, extractor)
    keys = [key for name in metrics for key in _KEEP[name] if all(key in r for r in reports.values())]
    results = {key: sum(r[key] for r in reports.values()) / len(reports) for key in keys}
    return results | {f"{key}/{class_name}": r[key] for key in keys for class_name, r in reports.items()}


def _report(fused: nn.Module, model: ModelConfig, sources: TextureSources, seeds: list[int], num_real: int,
            seed: int, class_id: int | None, extractor) -> dict[str, float]:
    """:func:`~deconvgan.metrics.diversity.texture_report` of the seeds' windows (of ``class_id``) against
    crops of ``sources``, with ``seam-unbounded``."""
    from deconvgan.images import to_uint8
    from deconvgan.metrics.diversity import texture_report
    from deconvgan.metrics.seams import seam_score
    from deconvgan.tiles import generate_texture, sample_textures

    labels = None if class_id is None else [class_id] * len(seeds)
    fake = sample_textures(fused, seeds, model.resolution, tileable=model.tileable, fuse=False,
                           labels=labels)  # [N, C, R, R]
    real = _crops(sources, model, num_real, seed)
    side = SEAM_TILE_CELLS * fused.scale
    tile_seeds = seeds[:SEAM_TILES]

    def tile(s: int, tileable: bool) -> torch.Tensor:  # uint8 [C, side, side]
        return to_uint8(generate_texture(fused, s, side, side, tileable=tileable, class_id=class_id)[None])[0]

    report = texture_report(fake, real, [tile(s, True) for s in tile_seeds], extractor=extractor)
    report["seam-unbounded"] = sum(seam_score(tile(s, False)) for s in tile_seeds) / len(tile_seeds)
    return report
