"""Metrics of class-conditional generators: class accuracy and the Fréchet distance class by class.

- ``class-accuracy``: the share of conditional samples that the dataset's own classifier (the one
  behind FD-classifier, trained on the train split) assigns to the class they were drawn for. A
  generator that ignores its class input scores about 1/K; the real test images score the
  classifier's own accuracy (99.4% on MNIST, 91.9% on Fashion-MNIST), the ceiling in practice.
- ``class-fd``: the Fréchet distance between the generated and the real images of each class
  separately, in the ``--extractor`` feature space (the classifier by default; Inception for
  folders of class subfolders), as ``class-fd/<name>`` for each class plus their mean and maximum.
  A conditional model that draws good images of the wrong class passes FD overall and fails here.

Both need the context's labels: ``fake_labels`` (the class each generated image was drawn for,
``seed mod K`` unless a class was chosen) and, for ``class-fd``, ``real_labels``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from deconvgan.errors import ConfigError

if TYPE_CHECKING:
    from deconvgan.metrics.evaluate import EvalContext

_FEWEST_PER_CLASS = 2  # a covariance needs two images


def _labels(ctx: EvalContext, name: str) -> torch.Tensor:
    if ctx.fake_labels is None or not ctx.model.num_classes:
        raise ConfigError(f"metric {name} is for class-conditional generators (model.num_classes > 0); "
                          "this snapshot is unconditional")
    return ctx.fake_labels[:ctx.num_generated]


def metric_class_accuracy(ctx: EvalContext) -> dict[str, float]:
    """Share of generated images the domain classifier puts in the class they were drawn for."""
    labels = _labels(ctx, "class-accuracy")
    classifier = ctx.get_extractor("classifier")
    predicted = classifier.predict(ctx.fake[:ctx.num_generated])
    return {"class-accuracy": float((predicted.cpu() == labels.cpu()).double().mean())}


def metric_class_fd(ctx: EvalContext) -> dict[str, float]:
    """Fréchet distance per class in the ``ctx.extractor`` space, with the mean and the worst class."""
    from deconvgan.metrics.frechet import feature_statistics, frechet_distance

    fake_labels = _labels(ctx, "class-fd")
    if ctx.real_labels is None:
        raise ConfigError(f"metric class-fd needs labelled real images; data {ctx.real_name} has none")
    real = ctx.real_stats(ctx.extractor).features
    fake = ctx.fake_features(ctx.extractor)
    names = ctx.class_names or tuple(str(k) for k in range(ctx.model.num_classes))
    results: dict[str, float] = {}
    for k, name in enumerate(names):
        real_k, fake_k = real[ctx.real_labels == k], fake[fake_labels == k]
        fewest = min(len(real_k), len(fake_k))
        if fewest < _FEWEST_PER_CLASS:
            raise ConfigError(f"metric class-fd: class {name!r} has {len(real_k)} real and {len(fake_k)} generated "
                              f"images, fewer than {_FEWEST_PER_CLASS}; raise --num-generated / --num-real")
        mu_r, sigma_r = feature_statistics(real_k)
        mu_f, sigma_f = feature_statistics(fake_k)
        results[f"class-fd/{name}"] = frechet_distance(mu_r, sigma_r, mu_f, sigma_f)
    values = list(results.values())
    return {"class-fd-mean": sum(values) / len(values), "class-fd-max": max(values), **results}
