"""Frozen, validated configuration: every knob of a run in one tree of dataclasses.

A config is built from defaults, then a YAML file, then ``--set section.key=value`` overrides
(:func:`load_config`). Each dataclass validates itself on creation, so a bad value fails at once
with a one-line :class:`~deconvgan.errors.ConfigError` naming the key and the allowed values.
The resolved config is written into every run directory and travels inside snapshots (the
``model`` section), so a snapshot alone rebuilds its generator.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from deconvgan.errors import ConfigError

UPSAMPLERS = ("transposed", "resize", "pixelshuffle")
ARCHITECTURES = ("dcgan", "seed", "mlp")
G_NORMS = ("batch", "none")
D_NORMS = ("batch", "spectral", "none")
MLP_ACTIVATIONS = ("sigmoid", "tanh", "relu")
LOSSES = ("minimax", "nonsaturating", "hinge", "wasserstein", "least-squares")
DATA_SOURCES = ("digits", "mnist", "fashion-mnist", "cifar10", "stacked-mnist", "folder")
# Metrics the training loop can select the best snapshot by: the result key it compares (lower is better).
TRAINING_METRICS = {"fd-classifier": "fd-classifier", "fid": "fid", "kid": "kid", "spectral": "spectral-distance",
                    "mode-coverage": "modes-kl"}


def data_arg(value: str) -> dict[str, str]:
    """What ``--data VALUE`` means: a standard dataset by name, otherwise a folder of images."""
    if value in DATA_SOURCES and value != "folder":
        return {"source": value}
    return {"source": "folder", "path": value}


def _check_choice(key: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ConfigError(f"{key}={value!r} is not one of {', '.join(choices)}")


def _check_positive(key: str, value: float, *, allow_zero: bool = False) -> None:
    if value < 0 or (value == 0 and not allow_zero):
        raise ConfigError(f"{key}={value!r} must be {'>= 0' if allow_zero else '> 0'}")


def base_resolution(resolution: int) -> int:
    """The side of the generator's first feature map: halve while even and the half is >= 4.

    16, 32, 64, 128 -> 4; 28 -> 7; 48 -> 6. The generator then doubles it
    ``log2(resolution / base)`` times.
    """
    base = resolution
    while base % 2 == 0 and base // 2 >= 4:
        base //= 2
    return base


@dataclass(frozen=True)
class ModelConfig:
    """Architecture of the generator/discriminator pair; stored inside every snapshot."""

    arch: str = "dcgan"  # dcgan | seed (the original 64x64 plan) | mlp (the plain GAN baseline)
    resolution: int = 16  # image side in pixels: base * 2^k with base 4..7 (16, 28, 32, 64, 128, ...)
    channels: int = 1  # 1 (grayscale) or 3 (RGB)
    latent_dim: int = 100
    g_width: int = 64  # generator channels at the last hidden layer; doubles per level towards the base
    d_width: int = 64  # discriminator channels at the first layer; doubles per level
    max_width: int = 512  # cap on channels at any level
    kernel_size: int = 4  # kernel of every up/down-sampling convolution
    upsample: str = "transposed"  # transposed | resize | pixelshuffle
    resize_mode: str = "nearest"  # nearest | bilinear, for upsample=resize
    g_norm: str = "batch"  # batch | none
    d_norm: str = "batch"  # batch | spectral | none
    mlp_hidden: int = 256  # hidden units of the mlp generator
    mlp_activation: str = "sigmoid"  # sigmoid | tanh | relu: the hidden nonlinearity of the mlp pair
    mlp_d_hidden: int = 0  # 0: D(x) = s(W3 x + b4) exactly as written; > 0 adds a hidden layer
    # Mode-collapse remedies in the discriminator (both off by default: D is then unchanged).
    d_pack: int = 1  # PacGAN (Lin et al. 2018): D judges packs of m samples, stacked along channels
    d_mbstd: int = 0  # minibatch-stddev group size (Karras et al. 2018): 0 = off, else >= 2; dcgan/seed

    def __post_init__(self) -> None:
        _check_choice("model.arch", self.arch, ARCHITECTURES)
        _check_choice("model.upsample", self.upsample, UPSAMPLERS)
        _check_choice("model.resize_mode", self.resize_mode, ("nearest", "bilinear"))
        _check_choice("model.g_norm", self.g_norm, G_NORMS)
        _check_choice("model.d_norm", self.d_norm, D_NORMS)
        _check_choice("model.mlp_activation", self.mlp_activation, MLP_ACTIVATIONS)
        if self.channels not in (1, 3):
            raise ConfigError(f"model.channels={self.channels} must be 1 (grayscale) or 3 (RGB)")
        for key in ("latent_dim", "g_width", "d_width", "max_width", "kernel_size", "mlp_hidden"):
            _check_positive(f"model.{key}", getattr(self, key))
        _check_positive("model.mlp_d_hidden", self.mlp_d_hidden, allow_zero=True)
        _check_positive("model.d_pack", self.d_pack)
        _check_positive("model.d_mbstd", self.d_mbstd, allow_zero=True)
        if self.d_mbstd == 1:
            raise ConfigError("model.d_mbstd=1: the stddev over a group of one sample is 0; use 0 (off) or >= 2")
        if self.d_mbstd and self.arch == "mlp":
            raise ConfigError(
                "model.d_mbstd needs a convolutional discriminator (it appends a feature map): "
                "use model.arch=dcgan or seed, or set model.d_mbstd=0"
            )
        if self.kernel_size < 2:
            raise ConfigError(f"model.kernel_size={self.kernel_size} must be >= 2 (stride-2 up/downsampling)")
        if self.arch == "seed" and self.resolution != 64:
            raise ConfigError(f"model.resolution={self.resolution}: the seed preset is 64x64; set it to 64")
        if self.resolution < 8 or base_resolution(self.resolution) == self.resolution:
            raise ConfigError(
                f"model.resolution={self.resolution} is not base * 2^k with base 4..7 and k >= 1 "
                "(try 16, 28, 32, 64 or 128)"
            )
        if not 4 <= base_resolution(self.resolution) <= 7:
            raise ConfigError(
                f"model.resolution={self.resolution} reduces to a {base_resolution(self.resolution)}-pixel "
                "base; use base * 2^k with base 4..7 (16, 28, 32, 64, 128, ...)"
            )

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(channels, height, width) of one generated image."""
        return (self.channels, self.resolution, self.resolution)


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
    stacked_count: int = 60000  # images in the generated Stacked MNIST set

    def __post_init__(self) -> None:
        _check_choice("data.source", self.source, DATA_SOURCES)
        _check_choice("data.split", self.split, ("train", "test"))
        if self.source == "folder" and not self.path:
            raise ConfigError("data.source=folder needs data.path (the image folder): pass --data PATH")
        if self.max_images is not None:
            _check_positive("data.max_images", self.max_images)
        _check_positive("data.stacked_count", self.stacked_count)


@dataclass(frozen=True)
class LossConfig:
    """The adversarial objective; every loss works on discriminator logits."""

    kind: str = "nonsaturating"  # minimax | nonsaturating | hinge | wasserstein | least-squares
    gp_weight: float = 10.0  # gradient-penalty weight for wasserstein (WGAN-GP)
    r1_gamma: float = 0.0  # R1 penalty on real images, gamma/2 * E|grad D(x)|^2; 0 turns it off

    def __post_init__(self) -> None:
        _check_choice("loss.kind", self.kind, LOSSES)
        _check_positive("loss.gp_weight", self.gp_weight, allow_zero=True)
        _check_positive("loss.r1_gamma", self.r1_gamma, allow_zero=True)


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
            _check_positive(f"phase {self.name!r} kimg", self.kimg)
        if self.steps is not None:
            _check_positive(f"phase {self.name!r} steps", self.steps)

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
    d_steps: int = 1  # discriminator steps per generator step in adversarial phases
    phases: tuple[PhaseConfig, ...] = (PhaseConfig(name="adversarial", kimg=100.0),)
    ema_halflife_kimg: float | None = 10.0  # None turns the moving average off (snapshots use G itself)
    ema_rampup: float | None = 0.05  # half-life <= this fraction of images seen so far (early samples)
    seed: int = 0
    sync_batchnorm: bool = False  # batch-norm statistics over the global batch of all processes

    def __post_init__(self) -> None:
        _check_positive("train.batch_size", self.batch_size)
        _check_positive("train.g_lr", self.g_lr)
        _check_positive("train.d_lr", self.d_lr)
        _check_positive("train.d_steps", self.d_steps)
        if len(self.betas) != 2 or not all(0 <= b < 1 for b in self.betas):
            raise ConfigError(f"train.betas={self.betas!r} must be two numbers in [0, 1)")
        if not self.phases:
            raise ConfigError("train.phases is empty: give at least one phase")
        if not self.phases[0].train_d:
            raise ConfigError("train.phases: the first phase must train the discriminator (train_d: true)")
        if self.ema_halflife_kimg is not None:
            _check_positive("train.ema_halflife_kimg", self.ema_halflife_kimg)
        if self.ema_rampup is not None:
            _check_positive("train.ema_rampup", self.ema_rampup)

    @property
    def total_steps(self) -> int:
        """Generator steps over the whole schedule."""
        return sum(p.num_steps(self.batch_size) for p in self.phases)


@dataclass(frozen=True)
class RunConfig:
    """Where a run writes and how often: logs, sample grids, snapshots, training state."""

    runs_dir: str = "runs"
    device: str = "auto"  # auto (CUDA if present, else CPU) | cpu | cuda | cuda:N
    log_every_kimg: float = 1.0  # one stats.jsonl line per this many kimg
    sample_every_kimg: float = 10.0  # a sample grid PNG per this many kimg (and at the end)
    snapshot_every_kimg: float = 25.0  # snapshot + training state per this many kimg (and at the end)
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
            _check_positive(f"run.{key}", getattr(self, key))
        _check_choice("run.amp", self.amp, ("none", "bf16"))
        if self.metric is not None:
            _check_choice("run.metric", self.metric, tuple(TRAINING_METRICS))
        _check_positive("run.metric_every_kimg", self.metric_every_kimg)
        if self.metric_samples < 2:
            raise ConfigError(f"run.metric_samples={self.metric_samples} must be >= 2 (a covariance needs two)")
        if self.dist_backend is not None:
            _check_choice("run.dist_backend", self.dist_backend, ("gloo", "nccl", "mpi", "ucc"))
        if self.device != "auto" and not (self.device == "cpu" or self.device.startswith("cuda")):
            raise ConfigError(f"run.device={self.device!r} must be auto, cpu, cuda or cuda:N")
        if self.num_threads is not None:
            _check_positive("run.num_threads", self.num_threads)


@dataclass(frozen=True)
class Config:
    """A whole run: ``name`` labels the run directory (``runs/00003-<name>/``)."""

    name: str = "digits-dcgan"
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    run: RunConfig = field(default_factory=RunConfig)

    def __post_init__(self) -> None:
        if not self.name or any(c in self.name for c in "/\\\0"):
            raise ConfigError(f"name={self.name!r} must be a non-empty string without slashes")
        if self.loss.kind == "wasserstein" and self.loss.gp_weight > 0 and self.model.d_norm == "batch":
            raise ConfigError(
                "loss.kind=wasserstein with a gradient penalty needs a discriminator without batch norm "
                "(the penalty is per sample): set model.d_norm=none or spectral"
            )
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


# --- building dataclasses from plain data, with type checks -------------------------------------


def from_dict(cls: type, data: dict[str, Any], prefix: str = "") -> Any:
    """Build dataclass ``cls`` from a nested dict, checking keys and types.

    Unknown keys are refused (a typo must not be silently ignored); missing keys take defaults.
    """
    if not isinstance(data, dict):
        raise ConfigError(f"{prefix or 'config'} must be a mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        where = f"{prefix}." if prefix else ""
        raise ConfigError(
            f"unknown config key {where}{unknown[0]}; known keys: {', '.join(sorted(fields))}"
        )
    kwargs = {name: _convert(hints[name], value, f"{prefix}.{name}" if prefix else name)
              for name, value in data.items()}
    try:
        return cls(**kwargs)
    except TypeError as exc:  # pragma: no cover - guarded by the key check above
        raise ConfigError(f"{prefix or 'config'}: {exc}") from None


def _convert(hint: Any, value: Any, key: str) -> Any:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        non_none = [a for a in args if a is not type(None)]
        return _convert(non_none[0], value, key)
    if dataclasses.is_dataclass(hint):
        if isinstance(value, hint):
            return value
        return from_dict(hint, value, key)
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key}={value!r} must be a list")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_convert(args[0], v, f"{key}[{i}]") for i, v in enumerate(value))
        if len(value) != len(args):
            raise ConfigError(f"{key}={value!r} must have {len(args)} entries")
        return tuple(_convert(a, v, f"{key}[{i}]") for i, (a, v) in enumerate(zip(args, value, strict=True)))
    if hint is float:
        if isinstance(value, str):  # YAML 1.1 reads 1e-4 (no dot) as a string; users mean the number
            try:
                return float(value)
            except ValueError:
                raise ConfigError(f"{key}={value!r} must be a number") from None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{key}={value!r} must be a number")
        return float(value)
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                return int(value)
            raise ConfigError(f"{key}={value!r} must be an integer")
        return value
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key}={value!r} must be true or false")
        return value
    if hint is str:
        if not isinstance(value, (str, int, float)) or isinstance(value, bool):
            raise ConfigError(f"{key}={value!r} must be a string")
        return str(value)
    return value  # pragma: no cover - every field type is handled above


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``a.b=value`` strings to a nested dict (values parsed as YAML: 1e-4, true, [1, 2])."""
    result = _deepcopy(data)
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"override {item!r} must look like section.key=value (e.g. train.batch_size=128)")
        try:
            value = yaml.safe_load(raw) if raw.strip() else None
        except yaml.YAMLError:
            value = raw
        node = result
        parts = key.strip().split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"override {item!r}: {part} is not a section")
        node[parts[-1]] = value
    return result


def _deepcopy(data: Any) -> Any:
    if isinstance(data, dict):
        return {k: _deepcopy(v) for k, v in data.items()}
    if isinstance(data, list):
        return [_deepcopy(v) for v in data]
    return data


def read_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping, with one-line errors for a missing or malformed file."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{path}:{where} is not valid YAML ({getattr(exc, 'problem', exc)})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a config file must be a YAML mapping of sections")
    return data


PRESET_PACKAGE = "deconvgan.configs"


def preset_names() -> list[str]:
    """Names of the YAML presets shipped in the package (``deconvgan train mnist-28``)."""
    return sorted(p.name[:-5] for p in resources.files(PRESET_PACKAGE).iterdir() if p.name.endswith(".yaml"))


def read_config_source(value: str | Path) -> dict:
    """The raw mapping of a preset name (``mnist-28``) or of a YAML file."""
    if str(value) in preset_names():
        return yaml.safe_load(resources.files(PRESET_PACKAGE).joinpath(f"{value}.yaml").read_text()) or {}
    if not str(value).endswith((".yaml", ".yml")) and not Path(value).exists():
        raise ConfigError(f"{str(value)!r} is neither a preset ({', '.join(preset_names())}) nor a YAML file")
    return read_yaml(value)


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> Config:
    """Defaults, then the preset or YAML file ``path`` (if any), then ``section.key=value`` overrides."""
    data = read_config_source(path) if path is not None else {}
    data = apply_overrides(data, overrides or [])
    return from_dict(Config, data)


def config_to_yaml(cfg: Config) -> str:
    """The resolved config as YAML text (what a run directory's ``config.yaml`` holds)."""
    return yaml.safe_dump(cfg.to_dict(), sort_keys=False)
