"""Diversity (mean pairwise unit-feature distance) and the texture report that combines the texture metrics."""

from __future__ import annotations

import pytest
import torch

from deconvgan.errors import DataError
from deconvgan.metrics.diversity import diversity, pairwise_distances, texture_report
from deconvgan.metrics.seams import seam_score
from deconvgan.metrics.sifid import EarlyInceptionFeatures, sifid
from deconvgan.metrics.spectral import radial_power_spectrum, spectral_distance, spectral_report

from .texture_helpers import needs_inception, needs_textures, random_crops, texture


def pixels(images: torch.Tensor) -> torch.Tensor:
    """Stand-in extractor: each pixel's colour is the feature vector ([N, C, H, W] -> float32, D = C)."""
    return images.float()


def flat(colour: tuple[int, int, int], side: int = 4) -> torch.Tensor:
    return torch.tensor(colour, dtype=torch.uint8)[:, None, None].expand(3, side, side)


def test_known_values_with_pixel_features() -> None:
    """Unit colour vectors: red vs green differ by |e1 - e2|^2 = 2 at every position; dark red is the
    same direction as red (distance 0: features are normalised per position). {red, green, dark red}:
    pairs 2, 0, 2 -> mean 4/3. A half red, half green image is 1 from red: 2 on half the positions."""
    red, green, dark_red = flat((255, 0, 0)), flat((0, 255, 0)), flat((90, 0, 0))
    assert diversity(torch.stack([red, green]), pixels) == pytest.approx(2.0, rel=1e-12)
    assert diversity(torch.stack([red, green, dark_red]), pixels) == pytest.approx(4 / 3, rel=1e-12)
    half = red.clone()
    half[:, :, 2:] = green[:, :, 2:]
    assert pairwise_distances(pixels(torch.stack([red, half])))[0, 1] == pytest.approx(1.0, rel=1e-12)
    # A black pixel is an all-zero feature vector: it stays zero (LPIPS's epsilon), so it is 1 from a unit vector.
    black = flat((0, 0, 0))
    assert diversity(torch.stack([red, black]), pixels) == pytest.approx(1.0, rel=1e-9)


def test_identical_images_give_zero() -> None:
    image = torch.randint(0, 256, (3, 8, 8), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    assert diversity(image.expand(5, 3, 8, 8), pixels) == pytest.approx(0.0, abs=1e-12)
    distances = pairwise_distances(pixels(image.expand(2, 3, 8, 8)))
    assert distances.shape == (2, 2) and distances.abs().max() < 1e-12


def test_errors_are_one_line() -> None:
    for bad, message in ((torch.zeros(1, 3, 8, 8, dtype=torch.uint8), "at least 2"),
                         (torch.zeros(2, 3, 8, 8), "uint8")):
        with pytest.raises(DataError, match=message) as info:
            diversity(bad, pixels)
        assert "\n" not in str(info.value)


@pytest.fixture(scope="module")
def early() -> EarlyInceptionFeatures:
    return EarlyInceptionFeatures()


@needs_inception
@needs_textures
def test_more_varied_sets_score_more(early: EarlyInceptionFeatures) -> None:
    """Eight 64-px images built from k distinct crops of grass (the rest repeats): diversity grows with
    k, from ~0 for near-copies (+-2 grey levels of noise, a collapsed generator) to ~0.6 for 8 crops."""
    crops = random_crops(texture("grass"), 8, 64, seed=2)
    gen = torch.Generator().manual_seed(1)
    copies = (crops[:1].short() + torch.randint(-2, 3, crops.shape, generator=gen)).clamp(0, 255).to(torch.uint8)
    scores = [diversity(copies, early)] + [diversity(crops[torch.arange(8) % k], early) for k in (2, 4, 8)]
    assert scores[0] < 0.01 and scores[-1] > 0.4, scores  # saw 0.0014 and 0.62
    assert all(a < b for a, b in zip(scores[:-1], scores[1:], strict=True)), scores


@needs_inception
@needs_textures
def test_texture_report_agrees_with_the_single_metrics(early: EarlyInceptionFeatures) -> None:
    """Real crops standing in for generated ones: every key equals its own function; the shared
    extraction and the index pairing (first min(N, M) pairs) change nothing."""
    fake = random_crops(texture("bark"), 5, 64, seed=1)
    real = random_crops(texture("bark"), 4, 64, seed=2)
    tiles = [texture("bark"), random_crops(texture("bark"), 1, 200, seed=3)[0]]
    report = texture_report(fake, real, tiles, early)
    spectral = spectral_report(real, fake)
    expected = {
        "sifid": sifid(fake[:4], real, early),
        "seam": (seam_score(tiles[0]) + seam_score(tiles[1])) / 2,
        "diversity": diversity(fake, early),
        "diversity-real": diversity(real, early),
        "spectral": spectral_distance(radial_power_spectrum(fake), radial_power_spectrum(real)),
        "periodic": spectral.fake_periodic_ratio,
        "periodic-real": spectral.real_periodic_ratio,
    }
    assert report.keys() == expected.keys()
    for key, value in expected.items():
        assert report[key] == pytest.approx(value, rel=1e-6, abs=1e-12), key
    assert report["spectral"] == pytest.approx(spectral.distance, rel=1e-9)  # the same distance, either order


def test_texture_report_checks_its_inputs() -> None:
    a = torch.zeros(2, 3, 16, 16, dtype=torch.uint8)
    with pytest.raises(DataError, match="crop the real images"):
        texture_report(a, torch.zeros(2, 3, 16, 12, dtype=torch.uint8), [a[0]], pixels)
    with pytest.raises(DataError, match="at least one whole generated image"):
        texture_report(a, a, [], pixels)
    with pytest.raises(DataError, match="real_crops must be uint8"):
        texture_report(a, a.float(), [a[0]], pixels)


def test_texture_report_runs_without_inception_and_omits_periodic_when_too_small() -> None:
    """With a stand-in extractor. 6-px crops are too small for the period-2 peak analysis (it needs even
    sides of at least 8 px): the periodic keys are left out; 12-px crops have them."""
    gen = torch.Generator().manual_seed(0)
    fake = torch.randint(0, 256, (3, 3, 6, 6), dtype=torch.uint8, generator=gen)
    real = torch.randint(0, 256, (3, 3, 6, 6), dtype=torch.uint8, generator=gen)
    report = texture_report(fake, real, [fake[0]], pixels)
    assert set(report) == {"sifid", "seam", "diversity", "diversity-real", "spectral"}
    assert all(isinstance(v, float) for v in report.values())
    report = texture_report(fake.repeat(1, 1, 2, 2), real.repeat(1, 1, 2, 2), [fake[0]], pixels)
    assert {"periodic", "periodic-real"} <= set(report)
