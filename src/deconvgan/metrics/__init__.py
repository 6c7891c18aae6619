"""Evaluation metrics: distances between feature sets and spectral artifact scores.

Public API::

    feature_statistics(features) -> (mu, sigma)             # float64 mean and unbiased covariance
    frechet_distance(mu1, sigma1, mu2, sigma2) -> float      # FID on Inception features
    kernel_inception_distance(real, fake, ...) -> (mean, std)
    precision_recall(real, fake, k=3) -> PrecisionRecall
    density_coverage(real, fake, k=5) -> DensityCoverage
    radial_power_spectrum(images) -> [R]; spectral_distance(a, b) -> float
    periodic_energy(images, stride=2) -> {period: ratio}; spectral_report(real, fake) -> SpectralReport
    seam_score(image) -> float; seam_ratios(image) -> (lr, tb)  # 1.0 = the 2x2 tiling shows no seam
    sifid(fake, real) -> float                               # SinGAN's SIFID, early Inception block, per pair
    diversity(images) -> float                               # mean pairwise unit-feature distance
    texture_report(fake, real_crops, tiles) -> dict          # sifid, seam, diversity(-real), spectral, periodic

Feature extractors and the evaluation entry point::

    InceptionFeatures(...)(images_uint8) -> [N, 2048]       # the 2015-12-05 FID network, offline
    domain_classifier(data_cfg, ...) -> DomainClassifier     # a small CNN trained on the data, cached
    mode_coverage(images, classifier) -> ModeCoverage        # Stacked MNIST: modes of 1000, KL to uniform
    evaluate(snapshot, data_cfg, metrics=...) -> dict        # the `deconvgan evaluate` command
"""

from deconvgan.metrics.cache import FeatureStats, cached_feature_stats
from deconvgan.metrics.classifier import ClassifierRecipe, DomainClassifier, StackedDigitClassifier, domain_classifier
from deconvgan.metrics.diversity import diversity, texture_report
from deconvgan.metrics.evaluate import METRICS, EvalContext, evaluate, run_metrics
from deconvgan.metrics.frechet import feature_statistics, frechet_distance
from deconvgan.metrics.inception import InceptionError, InceptionFeatures, InceptionNotInstalledError
from deconvgan.metrics.kid import kernel_inception_distance
from deconvgan.metrics.mode_coverage import ModeCoverage, mode_coverage
from deconvgan.metrics.prdc import DensityCoverage, PrecisionRecall, density_coverage, precision_recall
from deconvgan.metrics.seams import seam_ratios, seam_score
from deconvgan.metrics.sifid import EarlyInceptionFeatures, sifid, sifid_pairs
from deconvgan.metrics.spectral import (
    SpectralReport,
    periodic_energy,
    radial_power_spectrum,
    spectral_distance,
    spectral_report,
)

__all__ = [
    "METRICS",
    "ClassifierRecipe",
    "DensityCoverage",
    "DomainClassifier",
    "EarlyInceptionFeatures",
    "EvalContext",
    "FeatureStats",
    "InceptionError",
    "InceptionFeatures",
    "InceptionNotInstalledError",
    "ModeCoverage",
    "StackedDigitClassifier",
    "cached_feature_stats",
    "domain_classifier",
    "evaluate",
    "mode_coverage",
    "run_metrics",
    "PrecisionRecall",
    "SpectralReport",
    "density_coverage",
    "diversity",
    "feature_statistics",
    "frechet_distance",
    "kernel_inception_distance",
    "periodic_energy",
    "precision_recall",
    "radial_power_spectrum",
    "seam_ratios",
    "seam_score",
    "sifid",
    "sifid_pairs",
    "spectral_distance",
    "spectral_report",
    "texture_report",
]
