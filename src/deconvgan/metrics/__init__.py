"""Evaluation metrics: distances between feature sets and spectral artifact scores.

Public API::

    feature_statistics(features) -> (mu, sigma)             # float64 mean and unbiased covariance
    frechet_distance(mu1, sigma1, mu2, sigma2) -> float      # FID on Inception features
    kernel_inception_distance(real, fake, ...) -> (mean, std)
    precision_recall(real, fake, k=3) -> PrecisionRecall
    density_coverage(real, fake, k=5) -> DensityCoverage
    radial_power_spectrum(images) -> [R]; spectral_distance(a, b) -> float
    periodic_energy(images, stride=2) -> {period: ratio}; spectral_report(real, fake) -> SpectralReport

Feature extractors and the evaluation entry point::

    InceptionFeatures(...)(images_uint8) -> [N, 2048]       # the 2015-12-05 FID network, offline
    domain_classifier(data_cfg, ...) -> DomainClassifier     # a small CNN trained on the data, cached
    mode_coverage(images, classifier) -> ModeCoverage        # Stacked MNIST: modes of 1000, KL to uniform
    evaluate(snapshot, data_cfg, metrics=...) -> dict        # the `deconvgan evaluate` command
"""

from deconvgan.metrics.cache import FeatureStats, cached_feature_stats
from deconvgan.metrics.classifier import ClassifierRecipe, DomainClassifier, StackedDigitClassifier, domain_classifier
from deconvgan.metrics.evaluate import METRICS, EvalContext, evaluate, run_metrics
from deconvgan.metrics.frechet import feature_statistics, frechet_distance
from deconvgan.metrics.inception import InceptionError, InceptionFeatures, InceptionNotInstalledError
from deconvgan.metrics.kid import kernel_inception_distance
from deconvgan.metrics.mode_coverage import ModeCoverage, mode_coverage
from deconvgan.metrics.prdc import DensityCoverage, PrecisionRecall, density_coverage, precision_recall
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
    "feature_statistics",
    "frechet_distance",
    "kernel_inception_distance",
    "periodic_energy",
    "precision_recall",
    "radial_power_spectrum",
    "spectral_distance",
    "spectral_report",
]
