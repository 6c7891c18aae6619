"""Snapshots (for inference) and training states (for resume): safetensors + JSON, never pickle.

A **snapshot** is one ``.safetensors`` file: the generator's weights (the moving average when
training keeps one) as tensors, and in the file's string metadata the model config as JSON, the
package version and the format version. ``load_snapshot`` rebuilds the generator from it alone.

A **training state** is one ``.safetensors`` file too: G, D and the moving average, both Adam
optimisers' moment tensors, the torch RNG state, and as JSON metadata the full run config, the
step, the schedule position and the optimisers' hyper-parameters. Nothing in either file can run
code when loaded. Both are written atomically (:mod:`deconvgan.atomic`).
"""

from __future__ import annotations

import dataclasses
import json
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
    meta = {k: v if isinstance(v, str) else json.dumps(v) for k, v in metadata.items()}
    write_with(path, lambda tmp: save_file(flat, str(tmp), metadata=meta))


def _shares_storage(t: torch.Tensor) -> bool:
    return t.untyped_storage().nbytes() != t.numel() * t.element_size()


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
    version = int(metadata.get("format_version", "0"))
    if version > FORMAT_VERSION:
        raise CheckpointError(
            f"{path}: written by deconvgan {metadata.get('package_version', '?')} in format {version}; "
            f"this deconvgan {__version__} reads format <= {FORMAT_VERSION}: upgrade deconvgan"
        )
    return tensors, metadata


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
    module.load_state_dict(state)


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


def save_snapshot(
    path: str | Path, generator: nn.Module, model_cfg: ModelConfig, *,
    step: int = 0, kimg: float = 0.0, run_name: str = "", dataset: str = "",
) -> None:
    """Write the generator's weights and config to ``path`` atomically."""
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
        step=int(_json_field(path, metadata, "step")),
        kimg=float(_json_field(path, metadata, "kimg")),
        run_name=metadata.get("run_name", ""),
        dataset=metadata.get("dataset", ""),
    )
    return info, tensors


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


def _flatten_optimizer(prefix: str, state_dict: dict[str, Any]) -> tuple[dict[str, torch.Tensor], Any]:
    tensors = {}
    for index, per_param in state_dict["state"].items():
        for key, value in per_param.items():
            tensors[f"{prefix}.state.{index}.{key}"] = torch.as_tensor(value)
    return tensors, state_dict["param_groups"]


def _unflatten_optimizer(prefix: str, tensors: dict[str, torch.Tensor], groups: Any) -> dict[str, Any]:
    state: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in _unprefixed(f"{prefix}.state", tensors).items():
        index, _, name = key.partition(".")
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
        "opt_g.param_groups": opt_g_groups,
        "opt_d.param_groups": opt_d_groups,
    }
    _save(path, tensors, metadata)


def load_training_state(path: str | Path) -> TrainingState:
    """Read a training state; the caller loads the pieces into its modules and optimisers."""
    tensors, metadata = _open(path, STATE_FORMAT)
    try:
        config = from_dict(Config, _json_field(path, metadata, "config"))
    except ConfigError as exc:
        raise CheckpointError(f"{path}: its run config is not valid here ({exc})") from None
    if "rng.cpu" not in tensors:
        raise CheckpointError(f"{path}: training state without its RNG state (rng.cpu)")
    return TrainingState(
        config=config,
        step=int(_json_field(path, metadata, "step")),
        wall_time_s=float(_json_field(path, metadata, "wall_time_s")),
        generator=_unprefixed("G", tensors),
        discriminator=_unprefixed("D", tensors),
        generator_ema=_unprefixed("G_ema", tensors) if _json_field(path, metadata, "has_ema") else None,
        opt_g=_unflatten_optimizer("opt_g", tensors, _json_field(path, metadata, "opt_g.param_groups")),
        opt_d=_unflatten_optimizer("opt_d", tensors, _json_field(path, metadata, "opt_d.param_groups")),
        rng_cpu=tensors["rng.cpu"],
        world_size=int(metadata.get("world_size", "1")),
    )

