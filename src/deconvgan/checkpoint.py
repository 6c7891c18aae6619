"""Snapshots (for inference) and training states (for resume): safetensors + JSON, never pickle.

A **snapshot** is one ``.safetensors`` file: the generator's weights (the moving average when
training keeps one) as tensors, and in the file's string metadata the model config as JSON, the
package version and the format version. ``load_snapshot`` rebuilds the generator from it alone.

A **training state** is one ``.safetensors`` file too: G, D and the moving average, both Adam
optimisers' moment tensors, the torch RNG state, and as JSON metadata the full run config, the
step, the schedule position and the optimisers' hyper-parameters. Nothing in either file can run
code when loaded. Both are written atomically (:mod:`deconvgan.atomic`).

Both carry in their metadata ``tensor_sha256``: the first 16 hex digits of the SHA-256 of each
tensor's bytes, checked on load, so flipped bytes inside a tensor are refused instead of sampled.
Files written before checksums existed have no such field and load as before. Loading also refuses
non-finite floating-point values; a module's weights must have the dtypes the architecture makes.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
from torch import nn

from deconvgan import __version__
from deconvgan.atomic import write_with
from deconvgan.config import Config, ModelConfig
from deconvgan.configio import from_dict
from deconvgan.errors import CheckpointError, ConfigError
from deconvgan.runfiles import SNAPSHOT_FILE

SNAPSHOT_FORMAT = "deconvgan-snapshot"
STATE_FORMAT = "deconvgan-training-state"
FORMAT_VERSION = 1  # bump when a reader of this version could not read the new layout


def _save(path: str | Path, tensors: dict[str, torch.Tensor], metadata: dict[str, Any]) -> None:
    # safetensors wants contiguous tensors that share no storage; clone what must be cloned.
    flat = {k: v.detach().contiguous().clone() if _shares_storage(v) else v.detach().contiguous()
            for k, v in tensors.items()}
    metadata = {**metadata, CHECKSUM_KEY: {k: _checksum(v) for k, v in flat.items()}}
    meta = {k: v if isinstance(v, str) else json.dumps(v) for k, v in metadata.items()}
    write_with(path, lambda tmp: _save_file(flat, tmp, meta))


def _save_file(tensors: dict[str, torch.Tensor], tmp: Path, metadata: dict[str, str]) -> None:
    try:
        save_file(tensors, str(tmp), metadata=metadata)
    except SafetensorError as exc:  # safetensors reports a failed write (disk full, ...) as its own error type:
        found = re.search(r"I/O error: (.*?) \(os error (\d+)\)", str(exc))  # make it the OSError it is
        if found is None:
            raise
        raise OSError(int(found.group(2)), found.group(1)) from None


def _shares_storage(t: torch.Tensor) -> bool:
    return t.untyped_storage().nbytes() != t.numel() * t.element_size()


CHECKSUM_KEY = "tensor_sha256"  # metadata field: {tensor name: first 16 hex digits of sha256 of its bytes}


def _checksum(t: torch.Tensor) -> str:
    # The raw bytes as stored (any dtype, bfloat16 too, which numpy cannot hold): view them as uint8.
    data = t.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy()
    return hashlib.sha256(data.tobytes()).hexdigest()[:16]


def _verify(path: Path, what: str, tensors: dict[str, torch.Tensor], metadata: dict[str, str]) -> None:
    """Checksums (when the file has them) and finiteness of every tensor, as one-line errors."""
    if CHECKSUM_KEY in metadata:
        sums = _json_field(path, metadata, CHECKSUM_KEY)
        if not isinstance(sums, dict) or set(sums) != set(tensors):
            raise CheckpointError(f"{path}: its tensor checksums do not list its tensors: the file was altered; "
                                  f"use another {what}")
        for key, value in tensors.items():
            if _checksum(value) != sums[key]:
                raise CheckpointError(f"{path}: tensor {key} fails its checksum (the file is corrupt: flipped bytes "
                                      f"on disk or in transfer); use another {what}, e.g. one under snapshots/")
    for key, value in tensors.items():
        if value.is_floating_point() and not bool(torch.isfinite(value).all()):
            raise CheckpointError(f"{path}: tensor {key} holds NaN or infinite values (saved from a run that "
                                  f"diverged?); use an earlier {what}")


def _int_field(path: str | Path, metadata: dict[str, str], key: str, default: str | None = None) -> int:
    raw = metadata.get(key, default)
    try:
        value = json.loads(raw) if raw is not None else None
    except json.JSONDecodeError:
        value = None
    if not isinstance(value, int) or isinstance(value, bool):
        raise CheckpointError(f"{path}: metadata field {key!r} is {raw!r}, not an integer: the file is not one "
                              "deconvgan wrote (or was edited); use another")
    return value


def _float_field(path: str | Path, metadata: dict[str, str], key: str) -> float:
    value = _json_field(path, metadata, key)
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
        raise CheckpointError(f"{path}: metadata field {key!r} is {metadata[key]!r}, not a finite number: the file "
                              "is not one deconvgan wrote (or was edited); use another")
    return float(value)


def _open(path: str | Path, expected_format: str) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Read tensors and metadata, turning every way the file can be wrong into one-line errors."""
    path = Path(path)
    what = "snapshot" if expected_format == SNAPSHOT_FORMAT else "training state"
    if not path.exists():
        raise CheckpointError(f"{path}: no such {what} file")
    if not path.is_file():
        raise CheckpointError(f"{path}: is a directory, not a {what} file")
    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            metadata = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 - safe_open has no items()
    except (SafetensorError, OSError, ValueError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise CheckpointError(
            f"{path}: not a readable {what} (truncated or not a safetensors file: {reason})"
        ) from None
    fmt = metadata.get("format")
    if fmt is None:
        raise CheckpointError(f"{path}: a safetensors file without deconvgan metadata, not a {what}")
    if fmt != expected_format:
        raise CheckpointError(f"{path}: holds a {fmt!r}, expected a {what} ({expected_format!r})")
    version = _int_field(path, metadata, "format_version", "0")
    if version > FORMAT_VERSION:
        raise CheckpointError(
            f"{path}: written by deconvgan {metadata.get('package_version', '?')} in format {version}; "
            f"this deconvgan {__version__} reads format <= {FORMAT_VERSION}: upgrade deconvgan"
        )
    _verify(path, what, tensors, metadata)
    return tensors, metadata


def read_format(path: str | Path) -> str | None:
    """The ``format`` metadata of a safetensors file (:data:`SNAPSHOT_FORMAT`, :data:`STATE_FORMAT`), or None
    for anything else, unreadable files included. Reads the header only."""
    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            return (f.metadata() or {}).get("format")
    except (SafetensorError, OSError, ValueError):
        return None


def _json_field(path: str | Path, metadata: dict[str, str], key: str) -> Any:
    try:
        return json.loads(metadata[key])
    except (KeyError, json.JSONDecodeError):
        raise CheckpointError(f"{path}: metadata field {key!r} is missing or not JSON") from None


def _prefixed(prefix: str, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {f"{prefix}.{k}": v for k, v in state.items()}


def _unprefixed(prefix: str, tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    head = prefix + "."
    return {k[len(head):]: v for k, v in tensors.items() if k.startswith(head)}


def load_module_weights(path: str | Path, module: nn.Module, state: dict[str, torch.Tensor], what: str) -> None:
    """Load ``state`` into ``module`` with a one-line error naming ``path`` on any mismatch."""
    expected = module.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        detail = f"missing {missing[0]}" if missing else f"unexpected {unexpected[0]}"
        raise CheckpointError(f"{path}: {what} weights do not fit the architecture in its config ({detail})")
    for key, value in state.items():
        if value.shape != expected[key].shape:
            raise CheckpointError(
                f"{path}: {what} weight {key} has shape {tuple(value.shape)}, "
                f"the architecture needs {tuple(expected[key].shape)}"
            )
        if value.dtype != expected[key].dtype:  # load_state_dict would cast silently (int or half weights)
            raise CheckpointError(f"{path}: {what} weight {key} is {str(value.dtype).removeprefix('torch.')}, "
                                  f"the architecture needs {str(expected[key].dtype).removeprefix('torch.')}: "
                                  "not a file deconvgan wrote; use another")
    module.load_state_dict(state)


def load_optimizer_state(path: str | Path, optimizer: torch.optim.Optimizer, state: dict[str, Any], what: str) -> None:
    """Load ``state`` into ``optimizer`` with a one-line error naming ``path`` when it does not fit."""
    try:
        optimizer.load_state_dict(state)
    except (ValueError, KeyError, TypeError, IndexError, RuntimeError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise CheckpointError(f"{path}: the {what} optimizer state does not fit the model ({reason}); "
                              "use a training state of this run") from None


# --- snapshots ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class SnapshotInfo:
    """What a snapshot says about itself besides its weights."""

    path: Path
    model: ModelConfig
    package_version: str
    step: int
    kimg: float
    run_name: str
    dataset: str
    class_names: tuple[str, ...] = ()  # conditional models: the name of each class id (metadata "class_names")


def save_snapshot(
    path: str | Path, generator: nn.Module, model_cfg: ModelConfig, *,
    step: int = 0, kimg: float = 0.0, run_name: str = "", dataset: str = "",
    class_names: tuple[str, ...] = (),
) -> None:
    """Write the generator's weights and config to ``path`` atomically (``class_names``: conditional models)."""
    metadata = {
        "format": SNAPSHOT_FORMAT,
        "format_version": str(FORMAT_VERSION),
        "package_version": __version__,
        "model": dataclasses.asdict(model_cfg),
        "step": step,
        "kimg": kimg,
        "run_name": run_name,
        "dataset": dataset,
    }
    if class_names:
        metadata["class_names"] = list(class_names)
    _save(path, generator.state_dict(), metadata)


def read_snapshot_info(path: str | Path) -> tuple[SnapshotInfo, dict[str, torch.Tensor]]:
    """Validate a snapshot file and return its description and raw weights."""
    tensors, metadata = _open(path, SNAPSHOT_FORMAT)
    try:
        model_cfg = from_dict(ModelConfig, _json_field(path, metadata, "model"), "model")
    except ConfigError as exc:
        raise CheckpointError(f"{path}: its model config is not valid here ({exc})") from None
    info = SnapshotInfo(
        path=Path(path),
        model=model_cfg,
        package_version=metadata.get("package_version", "?"),
        step=_int_field(path, metadata, "step"),
        kimg=_float_field(path, metadata, "kimg"),
        run_name=metadata.get("run_name", ""),
        dataset=metadata.get("dataset", ""),
        class_names=_class_names(path, metadata, model_cfg.num_classes),
    )
    return info, tensors


def _class_names(path: str | Path, metadata: dict[str, str], num_classes: int) -> tuple[str, ...]:
    """The snapshot's class names; the ids as strings when it has none; () for unconditional models."""
    if not num_classes:
        return ()
    if "class_names" not in metadata:
        return tuple(str(i) for i in range(num_classes))
    names = _json_field(path, metadata, "class_names")
    if not isinstance(names, list) or len(names) != num_classes or not all(isinstance(n, str) for n in names):
        raise CheckpointError(f"{path}: metadata class_names is not a list of {num_classes} names")
    return tuple(names)


def load_snapshot(path: str | Path, device: str | torch.device = "cpu") -> tuple[nn.Module, SnapshotInfo]:
    """Rebuild the generator stored in a snapshot, in eval mode on ``device``.

    ``path`` may be a snapshot file or a run directory (its latest ``snapshot.safetensors``).
    """
    from deconvgan.models import build_generator  # models import nothing from here

    path = resolve_snapshot_path(path)
    info, tensors = read_snapshot_info(path)
    generator = build_generator(info.model)
    load_module_weights(path, generator, tensors, "generator")
    return generator.to(device).eval(), info


def resolve_snapshot_path(path: str | Path) -> Path:
    """A snapshot file as given, or a run directory's latest snapshot."""
    path = Path(path)
    if path.is_dir():
        candidate = path / SNAPSHOT_FILE
        if not candidate.is_file():
            raise CheckpointError(f"{path}: run directory without {SNAPSHOT_FILE} (has it saved one yet?)")
        return candidate
    return path


# --- training states ----------------------------------------------------------------------------


@dataclass
class TrainingState:
    """Everything needed to continue a run exactly where it stopped."""

    config: Config
    step: int  # generator steps completed (the data cursor follows from it and the schedule)
    wall_time_s: float  # training time accumulated over all sessions of the run
    generator: dict[str, torch.Tensor]
    discriminator: dict[str, torch.Tensor]
    generator_ema: dict[str, torch.Tensor] | None
    opt_g: dict[str, Any]
    opt_d: dict[str, Any]
    rng_cpu: torch.Tensor
    world_size: int = 1  # processes the run trained on when this state was written
    augment: dict[str, float] | None = None  # ADA's p and accumulators (training.augment.AdaptiveP.state_dict)
    lr_scale: float = 1.0  # the divergence guard's rollbacks multiply the configured learning rates by this
    rollbacks: int = 0  # rollbacks the divergence guard has made so far in this run


def _flatten_optimizer(prefix: str, state_dict: dict[str, Any]) -> tuple[dict[str, torch.Tensor], Any]:
    tensors = {}
    for index, per_param in state_dict["state"].items():
        for key, value in per_param.items():
            tensors[f"{prefix}.state.{index}.{key}"] = torch.as_tensor(value)
    return tensors, state_dict["param_groups"]


def _unflatten_optimizer(prefix: str, tensors: dict[str, torch.Tensor], groups: Any,
                         path: str | Path = "") -> dict[str, Any]:
    state: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in _unprefixed(f"{prefix}.state", tensors).items():
        index, _, name = key.partition(".")
        if not index.isdigit() or not name:
            raise CheckpointError(f"{path}: tensor {prefix}.state.{key} is not named <parameter index>.<name>: "
                                  "the file is not one deconvgan wrote; use another training state")
        state.setdefault(int(index), {})[name] = value
    for group in groups:
        if "betas" in group:
            group["betas"] = tuple(group["betas"])
    return {"state": state, "param_groups": groups}


def save_training_state(path: str | Path, state: TrainingState) -> None:
    """Write a training state to ``path`` atomically."""
    tensors = {**_prefixed("G", state.generator), **_prefixed("D", state.discriminator)}
    if state.generator_ema is not None:
        tensors.update(_prefixed("G_ema", state.generator_ema))
    opt_g_tensors, opt_g_groups = _flatten_optimizer("opt_g", state.opt_g)
    opt_d_tensors, opt_d_groups = _flatten_optimizer("opt_d", state.opt_d)
    tensors.update(opt_g_tensors)
    tensors.update(opt_d_tensors)
    tensors["rng.cpu"] = state.rng_cpu
    metadata = {
        "format": STATE_FORMAT,
        "format_version": str(FORMAT_VERSION),
        "package_version": __version__,
        "config": state.config.to_dict(),
        "step": state.step,
        "wall_time_s": state.wall_time_s,
        "has_ema": state.generator_ema is not None,
        "world_size": state.world_size,
        **({"augment": state.augment} if state.augment is not None else {}),
        "opt_g.param_groups": opt_g_groups,
        "opt_d.param_groups": opt_d_groups,
        "lr_scale": state.lr_scale,
        "rollbacks": state.rollbacks,
    }
    _save(path, tensors, metadata)


def _param_groups(path: str | Path, metadata: dict[str, str], key: str) -> list[dict[str, Any]]:
    groups = _json_field(path, metadata, key)
    if (not isinstance(groups, list) or not groups
            or not all(isinstance(g, dict) and isinstance(g.get("params"), list) for g in groups)):
        raise CheckpointError(f"{path}: metadata {key!r} is not a non-empty list of parameter groups: "
                              "the file is not one deconvgan wrote (or was edited); use another training state")
    return groups


def _augment_state(path: str | Path, metadata: dict[str, str]) -> dict[str, float]:
    state = _json_field(path, metadata, "augment")
    keys = ("p", "sign_sum", "count")
    if not isinstance(state, dict) or not all(isinstance(state.get(k), (int, float)) for k in keys) \
            or not 0 <= state["p"] <= 1:
        raise CheckpointError(f"{path}: metadata 'augment' is not {{p in [0, 1], sign_sum, count}}: the file is not "
                              "one deconvgan wrote (or was edited); use another training state")
    return {k: float(state[k]) for k in keys}


def load_training_state(path: str | Path) -> TrainingState:
    """Read a training state; the caller loads the pieces into its modules and optimisers."""
    tensors, metadata = _open(path, STATE_FORMAT)
    try:
        config = from_dict(Config, _json_field(path, metadata, "config"))
    except ConfigError as exc:
        raise CheckpointError(f"{path}: its run config is not valid here ({exc})") from None
    if "rng.cpu" not in tensors or tensors["rng.cpu"].dtype != torch.uint8:
        raise CheckpointError(f"{path}: training state without its RNG state (rng.cpu, uint8)")
    step = _int_field(path, metadata, "step")
    if not 0 <= step <= config.train.total_steps:
        raise CheckpointError(f"{path}: step {step} lies outside its own schedule of {config.train.total_steps} "
                              "steps: the file is not one deconvgan wrote (or was edited); use another training state")
    lr_scale = _float_field(path, metadata, "lr_scale") if "lr_scale" in metadata else 1.0
    if not 0 < lr_scale <= 1:
        raise CheckpointError(f"{path}: metadata field 'lr_scale' is {lr_scale}, not in (0, 1]; use another "
                              "training state")
    return TrainingState(
        config=config,
        step=step,
        wall_time_s=_float_field(path, metadata, "wall_time_s"),
        generator=_unprefixed("G", tensors),
        discriminator=_unprefixed("D", tensors),
        generator_ema=_unprefixed("G_ema", tensors) if _json_field(path, metadata, "has_ema") else None,
        opt_g=_unflatten_optimizer("opt_g", tensors, _param_groups(path, metadata, "opt_g.param_groups"), path),
        opt_d=_unflatten_optimizer("opt_d", tensors, _param_groups(path, metadata, "opt_d.param_groups"), path),
        rng_cpu=tensors["rng.cpu"],
        world_size=_int_field(path, metadata, "world_size", "1"),
        augment=_augment_state(path, metadata) if "augment" in metadata else None,
        lr_scale=lr_scale,
        rollbacks=_int_field(path, metadata, "rollbacks", "0"),
    )

