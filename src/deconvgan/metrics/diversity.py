"""Diversity across samples, and the texture report (SIFID, seams, diversity, spectrum) in one call.

**Diversity** is the mean distance between two samples drawn with different seeds, in the style of
LPIPS diversity (Zhang et al. 2018; Zhu et al. 2017) but with uniform channel weights, so no learned
weights are needed offline. Each image's early Inception feature map ``[D, h, w]`` (the one SIFID
uses: :class:`~deconvgan.metrics.sifid.EarlyInceptionFeatures`, 64 channels by default) is
normalised to a unit vector over the channels at every position, ``f / (|f| + 1e-10)`` as LPIPS
does, and two images ``a``, ``b`` are ``d(a, b) = mean over positions of |f_a - f_b|^2``. The score
is the mean of ``d`` over all ``N (N - 1) / 2`` unordered pairs of the set::

    diversity(x) = 2 / (N (N - 1)) * sum_{i < j} d(x_i, x_j)

0 means every sample is the same image (mode collapse); the features are non-negative (after a
ReLU), so ``d`` is at most 2. The distance is position by position: two samples that are the same
texture shifted count as different, as two random crops of a photograph do. Report it next to the
same number for real random crops of the same size (``diversity-real`` in :func:`texture_report`):
a generator as varied as the data scores about the same.
"""

from __future__ import annotations

import torch
from torch import Tensor

from deconvgan.errors import DataError
from deconvgan.metrics.seams import seam_score
from deconvgan.metrics.sifid import EarlyInceptionFeatures, Extractor, check_uint8_images, sifid_from_maps
from deconvgan.metrics.spectral import (
    LOG_FLOOR,
    mean_power_spectrum,
    periodic_periods,
    periodic_ratios,
    radial_profile,
    spectral_distance,
)

NORM_EPS = 1e-10  # LPIPS's epsilon: an all-zero position (every channel cut by the ReLU) stays zero
COLUMN_CHUNK = 1 << 16  # feature columns per float64 Gram update: memory O(N * chunk), not O(N * D*h*w)


def unit_features(maps: Tensor) -> Tensor:
    """``[N, D, h, w]`` -> float32 ``[N, D, h, w]`` with each position's channel vector scaled to length 1."""
    maps = maps.to(torch.float32)
    return maps / (maps.square().sum(dim=1, keepdim=True).sqrt() + NORM_EPS)  # norm over D, per position


def pairwise_distances(maps: Tensor) -> Tensor:
    """float64 ``[N, N]``: ``d(i, j)`` = mean over positions of ``|unit(maps[i]) - unit(maps[j])|^2``.

    Through the Gram matrix, ``|a - b|^2 = |a|^2 + |b|^2 - 2 a.b``, accumulated in float64 over column
    chunks: one matrix product instead of ``N^2 / 2`` differences, and memory bounded whatever ``N``.
    The diagonal is 0; round-off is clamped at 0 (identical images give 0 to ~1e-15).
    """
    n = maps.shape[0]
    positions = maps.shape[2] * maps.shape[3]
    flat = unit_features(maps).reshape(n, -1)  # [N, D*h*w]
    gram = torch.zeros(n, n, dtype=torch.float64)
    for start in range(0, flat.shape[1], COLUMN_CHUNK):
        block = flat[:, start:start + COLUMN_CHUNK].to(torch.float64)  # [N, chunk]
        gram += block @ block.T
    norms = gram.diagonal()  # [N]: |a|^2, the number of non-zero positions of each image (up to round-off)
    dist = (norms[:, None] + norms[None, :] - 2 * gram).clamp_min(0) / positions
    return dist.fill_diagonal_(0)


def diversity_from_maps(maps: Tensor) -> float:
    """:func:`diversity` on already extracted feature maps ``[N, D, h, w]``, ``N >= 2``."""
    n = maps.shape[0]
    if n < 2:
        raise DataError(f"diversity compares samples in pairs: got {n} image, need at least 2 (different seeds)")
    return float(pairwise_distances(maps).sum() / (n * (n - 1)))  # each unordered pair counted twice


def diversity(images: Tensor, extractor: Extractor | None = None) -> float:
    """Mean pairwise feature distance of a set of samples (see the module doc): 0 for identical images.

    ``images``: uint8 ``[N, C, H, W]``, ``N >= 2``, e.g. one sample per seed, or real random crops of
    the same size for the baseline. ``extractor``: uint8 images -> feature maps ``[N, D, h, w]``;
    default :class:`~deconvgan.metrics.sifid.EarlyInceptionFeatures` (64 channels).
    """
    check_uint8_images(images, "images")
    if images.shape[0] < 2:
        raise DataError(f"diversity compares samples in pairs: got {images.shape[0]} image, need at least 2")
    extractor = extractor if extractor is not None else EarlyInceptionFeatures()
    return diversity_from_maps(extractor(images))


def texture_report(fake: Tensor, real_crops: Tensor, tiles: list[Tensor],
                   extractor: Extractor | None = None) -> dict[str, float]:
    """The texture metrics of a generator in one dict (feature maps extracted once per image).

    ``fake``: uint8 ``[N, C, h, w]`` generated samples of different seeds; ``real_crops``: uint8
    ``[M, C, h, w]`` random crops of the training image(s), same size; ``tiles``: whole generated
    images ``[C, H, W]`` (uint8 or float, any size) for the seam score. Keys:

    * ``sifid``: mean SIFID over the pairs ``(fake[i], real_crops[i])``, ``i < min(N, M)``;
    * ``diversity``, ``diversity-real``: :func:`diversity` of ``fake`` and of ``real_crops`` (N, M >= 2);
    * ``seam``: mean :func:`~deconvgan.metrics.seams.seam_score` over ``tiles`` (at least one);
    * ``spectral``: :func:`~deconvgan.metrics.spectral.spectral_distance` of the two sets' radial power
      spectra (decades; 0 = same frequency content);
    * ``periodic``, ``periodic-real``: the period-2 peak ratios of both sets (the transposed
      convolution's checkerboard; 1.0 = none; :func:`~deconvgan.metrics.spectral.periodic_energy`),
      present when ``h, w`` allow period 2 (even sides of at least 8 px).
    """
    check_uint8_images(fake, "fake")
    check_uint8_images(real_crops, "real_crops")
    if fake.shape[1:] != real_crops.shape[1:]:
        raise DataError(f"fake samples are {tuple(fake.shape[1:])} and real crops {tuple(real_crops.shape[1:])}: "
                        "crop the real images to the generated size and channels")
    if not tiles:
        raise DataError("texture_report needs at least one whole generated image in tiles for the seam score")
    extractor = extractor if extractor is not None else EarlyInceptionFeatures()
    fake_maps, real_maps = extractor(fake), extractor(real_crops)  # [N, D, h', w'], [M, D, h', w']
    pairs = min(fake.shape[0], real_crops.shape[0])
    fake_power, real_power = mean_power_spectrum(fake), mean_power_spectrum(real_crops)  # [h, w] each
    report = {
        "sifid": float(sifid_from_maps(fake_maps[:pairs], real_maps[:pairs]).mean()),
        "seam": sum(seam_score(tile) for tile in tiles) / len(tiles),
        "diversity": diversity_from_maps(fake_maps),
        "diversity-real": diversity_from_maps(real_maps),
        "spectral": spectral_distance(radial_profile(fake_power).clamp_min(LOG_FLOOR).log10(),
                                      radial_profile(real_power).clamp_min(LOG_FLOOR).log10()),
    }
    if 2 in periodic_periods(fake.shape[2], fake.shape[3], 2):
        report["periodic"] = periodic_ratios(fake_power, 2)[2]
        report["periodic-real"] = periodic_ratios(real_power, 2)[2]
    return report
