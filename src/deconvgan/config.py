"""Frozen, validated configuration: every knob of a run in one tree of dataclasses.

This module is the schema only; its ``model`` and ``augment`` sections live in
:mod:`deconvgan.modelconfig` and :mod:`deconvgan.augmentconfig` and are re-exported here. A config is
built from defaults, then a YAML file, then ``--set section.key=value`` overrides by
:func:`deconvgan.configio.load_config`. Each dataclass validates itself on creation, so a bad value
fails at once with a one-line :class:`~deconvgan.errors.ConfigError` naming the key and the allowed
values. The resolved config is written into every run directory and travels inside snapshots (the
``model`` section), so a snapshot alone rebuilds its generator.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

from deconvgan.augmentconfig import AUGMENT_OPS, AUGMENTS, AugmentConfig  # noqa: F401  (re-exported)
from deconvgan.errors import ConfigError
from deconvgan.modelconfig import (  # noqa: F401  (re-exported: the schema is imported from here)
    ARCHITECTURES,
    D_NORMS,
    G_NORMS,
    MLP_ACTIVATIONS,
    RESIZE_MODES,
    UPSAMPLERS,
    ModelConfig,
    base_resolution,
    check_choice,
    check_in_range,
    check_positive,
)
from deconvgan.runfiles import DEFAULT_RUNS_DIR

LOSSES = ("minimax", "nonsaturating", "hinge", "wasserstein", "least-squares")
DATA_SOURCES = ("digits", "mnist", "fashion-mnist", "cifar10", "stacked-mnist", "folder", "texture-sample")
# Metrics the training loop can keep the best snapshot by; the result key each compares lives beside the
# loop's evaluator (deconvgan.training.evaluation.BEST_KEYS), and a test ties the two together.
TRAINING_METRICS = ("fd-classifier", "fid", "kid", "spectral", "mode-coverage")
ON_DIVERGENCE = ("stop", "rollback")  # what the divergence guard does (deconvgan.training.guard)
LR_DECAYS = ("none", "linear", "cosine")  # the learning-rate schedule over a run: deconvgan.training.schedule


def background_rgb(colour: str) -> tuple[int, int, int]:
    """``data.background`` as 8-bit RGB: a CSS colour name (``white``) or ``#rrggbb``; ConfigError otherwise."""
    from PIL import ImageColor

    try:
        rgb = ImageColor.getrgb(colour)
    except ValueError:
        raise ConfigError(f"data.background={colour!r} is not a colour: give a name (white, black, gray) "
                          "or #rrggbb") from None
    return rgb[0], rgb[1], rgb[2]


@dataclass(frozen=True)
class DataConfig:
    """Where the training images come from; geometry (resolution, channels) comes from the model."""

    source: str = "digits"  # digits (embedded, offline) | mnist | fashion-mnist | cifar10 | stacked-mnist | folder
    path: str | None = None  # the image folder for source=folder
    root: str | None = None  # standard datasets live here; default $DECONVGAN_DATA_ROOT or ~/.cache/deconvgan/data
    split: str = "train"  # train | test
    download: bool = True  # fetch standard datasets from their public mirrors if missing (checksummed)
    max_images: int | None = None  # use only the first N images (after any shuffling the source does)
    skip_bad_files: bool = False  # skip unreadable images in a folder (counted in a warning) instead of failing
    hflip: bool = False  # random horizontal flips at batch time
    rot90: bool = False  # random quarter turns of texture crops (isotropic materials; with hflip: all 8 symmetries)
    scale: float = 1.0  # resample texture sources by this factor before cropping (1: full resolution)
    stacked_count: int = 60000  # images in the generated Stacked MNIST set
    # Train on a seeded subset (small-data experiments): this share of the images, drawn per class where the
    # source has labels; fraction_seed fixes which images, independently of train.seed
    fraction: float = 1.0
    fraction_seed: int = 0
    background: str = "white"  # colour transparent pixels are composited onto: a name or #rrggbb

    def __post_init__(self) -> None:
        check_choice("data.source", self.source, DATA_SOURCES)
        check_choice("data.split", self.split, ("train", "test"))
        if self.source == "folder" and not self.path:
            raise ConfigError("data.source=folder needs data.path (the image folder): pass --data PATH")
        if self.max_images is not None:
            check_positive("data.max_images", self.max_images)
        check_positive("data.stacked_count", self.stacked_count)
        check_positive("data.scale", self.scale)
        check_positive("data.fraction", self.fraction)
        check_in_range("data.fraction", self.fraction, 0, 1, open_low=True, what="the share of the images to train on")
        background_rgb(self.background)  # a ConfigError now, not when the first transparent image is read


@dataclass(frozen=True)
class LossConfig:
    """The adversarial objective; every loss works on discriminator logits."""

    kind: str = "nonsaturating"  # minimax | nonsaturating | hinge | wasserstein | least-squares
    gp_weight: float = 10.0  # gradient-penalty weight for wasserstein (WGAN-GP)
    r1_gamma: float = 0.0  # R1 penalty on real images, gamma/2 * E|grad D(x)|^2; 0 turns it off
    r1_every: int = 1  # lazy R1 (Karras et al. 2020): every Nth step only, weighted xN (same mean pull)

    def __post_init__(self) -> None:
        check_choice("loss.kind", self.kind, LOSSES)
        check_positive("loss.gp_weight", self.gp_weight, allow_zero=True)
        check_positive("loss.r1_gamma", self.r1_gamma, allow_zero=True)
        check_positive("loss.r1_every", self.r1_every)


@dataclass(frozen=True)
class PhaseConfig:
    """One stage of the schedule, with its length in images (kimg) or generator steps."""

    name: str = "adversarial"
    kimg: float | None = None  # length in thousands of generated images (one batch per generator step)
    steps: int | None = None  # or length in generator steps; exactly one of the two
    train_d: bool = True  # False: the generator trains alone against the frozen discriminator

    def __post_init__(self) -> None:
        if (self.kimg is None) == (self.steps is None):
            raise ConfigError(f"phase {self.name!r}: give exactly one of kimg or steps")
        if self.kimg is not None:
            check_positive(f"phase {self.name!r} kimg", self.kimg)
        if self.steps is not None:
            check_positive(f"phase {self.name!r} steps", self.steps)

    def num_steps(self, batch_size: int) -> int:
        """Generator steps in this phase at the given global batch size."""
        if self.steps is not None:
            return self.steps
        assert self.kimg is not None
        return max(1, math.ceil(self.kimg * 1000 / batch_size))


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation: batch, Adam, the phase schedule, the generator's moving average, the seed."""

    batch_size: int = 64  # global batch: per-process batch x number of processes
    g_lr: float = 2e-4
    d_lr: float = 2e-4
    betas: tuple[float, float] = (0.5, 0.999)
    lr_decay: str = "none"  # none | linear | cosine: both rates fall to lr_final_scale x theirs by the last step,
    lr_decay_start: float = 0.0  # starting after this share of the run's steps
    lr_final_scale: float = 0.0
    d_steps: int = 1  # discriminator steps per generator step in adversarial phases
    phases: tuple[PhaseConfig, ...] = (PhaseConfig(name="adversarial", kimg=100.0),)
    ema_halflife_kimg: float | None = 10.0  # None turns the moving average off (snapshots use G itself)
    ema_rampup: float | None = 0.05  # half-life <= this fraction of images seen so far (early samples)
    seed: int = 0
    sync_batchnorm: bool = False  # batch-norm statistics over the global batch of all processes
    # a non-finite loss or weight: stop, or rollback (the last good state, rates x factor; at most N times)
    on_divergence: str = "stop"  # stop | rollback
    max_rollbacks: int = 3
    rollback_lr_factor: float = 0.5

    def __post_init__(self) -> None:
        check_positive("train.batch_size", self.batch_size)
        check_positive("train.g_lr", self.g_lr)
        check_positive("train.d_lr", self.d_lr)
        check_positive("train.d_steps", self.d_steps)
        check_choice("train.lr_decay", self.lr_decay, LR_DECAYS)
        check_in_range("train.lr_decay_start", self.lr_decay_start, 0, 1, open_high=True,
                       what="the share of the run before the rates start to fall")
        check_in_range("train.lr_final_scale", self.lr_final_scale, 0, 1,
                       what="the rates' last value as a fraction of their first")
        if len(self.betas) != 2 or not all(0 <= b < 1 for b in self.betas):
            raise ConfigError(f"train.betas={self.betas!r} must be two numbers in [0, 1)")
        if not self.phases:
            raise ConfigError("train.phases is empty: give at least one phase")
        if not self.phases[0].train_d:
            raise ConfigError("train.phases: the first phase must train the discriminator (train_d: true)")
        if self.ema_halflife_kimg is not None:
            check_positive("train.ema_halflife_kimg", self.ema_halflife_kimg)
        if self.ema_rampup is not None:
            check_positive("train.ema_rampup", self.ema_rampup)
        check_choice("train.on_divergence", self.on_divergence, ON_DIVERGENCE)
        check_positive("train.max_rollbacks", self.max_rollbacks, allow_zero=True)
        check_in_range("train.rollback_lr_factor", self.rollback_lr_factor, 0, 1, open_low=True, open_high=True)

    @property
    def total_steps(self) -> int:
        """Generator steps over the whole schedule."""
        return sum(p.num_steps(self.batch_size) for p in self.phases)


@dataclass(frozen=True)
class RunConfig:
    """Where a run writes and how often: logs, sample grids, snapshots, training state."""

    runs_dir: str = DEFAULT_RUNS_DIR
    device: str = "auto"  # auto (CUDA if present, else CPU) | cpu | cuda | cuda:N
    log_every_kimg: float = 1.0  # one stats.jsonl line per this many kimg
    sample_every_kimg: float = 10.0  # a sample grid PNG per this many kimg (and at the end)
    snapshot_every_kimg: float = 25.0  # snapshot + training state per this many kimg (and at the end)
    state_every_minutes: float | None = 10.0  # also a training state after this much time (None: kimg only)
    keep_snapshots: int | None = None  # keep only the newest N step snapshots in snapshots/ (None: all)
    grid_size: int = 64  # images in each sample grid (a fixed latent batch)
    tensorboard: bool = True  # write TensorBoard scalars and grids when tensorboard is installed
    progress: bool = True  # show a progress bar
    num_threads: int | None = None  # torch intra-op threads on the CPU; None keeps torch's default
    dist_backend: str | None = None  # torchrun runs: None picks nccl on CUDA, gloo on the CPU
    dist_timeout_s: float = 300.0  # a collective waiting this long for a lost rank fails the run
    amp: str = "none"  # none | bf16: bfloat16 autocast for forward passes (CUDA, or CPUs with bf16)
    channels_last: bool = False  # NHWC memory format for convolutions (often faster on GPUs)
    cudnn_benchmark: bool = True  # let cuDNN pick the fastest kernels (CUDA only; not bit-reproducible)
    metric: str | None = None  # evaluate during training: fd-classifier | fid | kid | spectral | mode-coverage
    metric_every_kimg: float = 50.0  # and keep snapshot-best.safetensors by it
    metric_samples: int = 5000  # generated images (and real test images) per evaluation

    def __post_init__(self) -> None:
        for key in ("log_every_kimg", "sample_every_kimg", "snapshot_every_kimg", "grid_size", "dist_timeout_s"):
            check_positive(f"run.{key}", getattr(self, key))
        for key in ("state_every_minutes", "keep_snapshots"):  # optional
            if getattr(self, key) is not None:
                check_positive(f"run.{key}", getattr(self, key))
        check_choice("run.amp", self.amp, ("none", "bf16"))
        if self.metric is not None:
            check_choice("run.metric", self.metric, tuple(TRAINING_METRICS))
        check_positive("run.metric_every_kimg", self.metric_every_kimg)
        if self.metric_samples < 2:
            raise ConfigError(f"run.metric_samples={self.metric_samples} must be >= 2 (a covariance needs two)")
        if self.dist_backend is not None:
            check_choice("run.dist_backend", self.dist_backend, ("gloo", "nccl", "mpi", "ucc"))
        if self.device != "auto" and not (self.device == "cpu" or self.device.startswith("cuda")):
            raise ConfigError(f"run.device={self.device!r} must be auto, cpu, cuda or cuda:N")
        if self.num_threads is not None:
            check_positive("run.num_threads", self.num_threads)


@dataclass(frozen=True)
class Config:
    """A whole run: ``name`` labels the run directory (``runs/00003-<name>/``)."""

    name: str = "digits-dcgan"
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    run: RunConfig = field(default_factory=RunConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)

    def __post_init__(self) -> None:
        if not self.name or any(c in self.name for c in "/\\\0"):
            raise ConfigError(f"name={self.name!r} must be a non-empty string without slashes")
        if self.loss.kind == "wasserstein" and self.loss.gp_weight > 0 and self.model.d_norm == "batch":
            raise ConfigError(
                "loss.kind=wasserstein with a gradient penalty needs a discriminator without batch norm "
                "(the penalty is per sample): set model.d_norm=none or spectral"
            )
        texture_data = self.data.source in ("folder", "texture-sample")
        if self.model.arch == "spatial" and not texture_data:
            raise ConfigError(f"model.arch=spatial trains on crops of your own images, not data.source="
                              f"{self.data.source}: pass --data IMAGE_OR_FOLDER")
        if self.model.arch == "spatial" and self.run.metric is not None:
            raise ConfigError(f"run.metric={self.run.metric} scores whole-image models; score a texture model with "
                              "`deconvgan evaluate RUN` (SIFID, seams, diversity) and leave run.metric unset")
        if self.model.arch == "spatial" and self.data.fraction < 1:
            raise ConfigError(f"data.fraction={self.data.fraction} subsets a set of images; a texture model trains "
                              "on crops of its source images: leave data.fraction at 1")
        if self.model.arch != "spatial" and self.data.source == "texture-sample":
            raise ConfigError("data.source=texture-sample is one texture photograph: train it with the texture "
                              "preset (model.arch=spatial)")
        if self.train.batch_size % self.model.d_pack:
            raise ConfigError(
                f"train.batch_size={self.train.batch_size} is not divisible by model.d_pack={self.model.d_pack} "
                "(the discriminator judges packs of d_pack samples): make it a multiple"
            )

    def to_dict(self) -> dict[str, Any]:
        """Plain nested dict (tuples as lists), ready for YAML or JSON."""
        return _to_plain(dataclasses.asdict(self))


def _to_plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _to_plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_to_plain(v) for v in value]
    return value
