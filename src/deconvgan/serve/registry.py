"""The served models: snapshots loaded once at start-up and looked up by name.

Only ``.safetensors`` snapshots are loaded (:func:`deconvgan.checkpoint.load_snapshot`: weights and model
config, no pickle, no code). A run directory stands for its latest ``snapshot.safetensors``, as for
``deconvgan sample RUN``. Requests name models; a name is only ever a key of the dict built here, never
part of a path.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch import nn

from deconvgan.checkpoint import SnapshotInfo, load_snapshot, resolve_snapshot_path
from deconvgan.errors import CheckpointError, ConfigError
from deconvgan.models.fuse import fuse_for_inference
from deconvgan.serve.backends import ImageBackend, onnx_available, onnx_backend, torch_backend
from deconvgan.serve.directions import Directions, compute_directions
from deconvgan.serve.settings import ServeSettings

log = logging.getLogger("deconvgan.serve")


@dataclass(eq=False)
class ServedModel:
    """One model: its snapshot's description, the folded generator, and what warm-up adds (backend,
    directions) and start-up attaches (its batcher)."""

    name: str
    info: SnapshotInfo
    generator: nn.Module  # eval mode, batch norm folded (fuse_for_inference), CPU
    checksum: str  # sha256 of the snapshot file: part of every ETag, so a new snapshot is a new image
    backend: ImageBackend | None = None  # whole-image models, after warm-up
    directions: Directions | None = None
    batcher: Any = None  # deconvgan.serve.batcher.Batcher, while the app runs
    notes: list[str] = field(default_factory=list)  # why a backend was not the one asked for

    @property
    def is_texture(self) -> bool:
        """True for texture models (``arch: spatial``): latent fields, tiles, no latent vectors."""
        return self.info.model.arch == "spatial"

    @property
    def latent_dim(self) -> int:
        """Latent vector size; for texture models the channels of the latent field."""
        return int(self.generator.latent_dim)

    @property
    def backend_name(self) -> str:
        return "torch" if self.backend is None else self.backend.name

    def describe(self) -> dict[str, Any]:
        """The model's entry in ``GET /v1/models``."""
        cfg = self.info.model
        return {
            "name": self.name, "kind": "texture" if self.is_texture else "image",
            "resolution": cfg.resolution, "channels": cfg.channels, "latent_dim": self.latent_dim,
            "kimg": self.info.kimg, "dataset": self.info.dataset, "num_classes": cfg.num_classes,
            "class_names": list(self.info.class_names), "tileable": bool(cfg.tileable),
            "backend": self.backend_name,
        }


def file_sha256(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB pieces."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def load_models(settings: ServeSettings) -> dict[str, ServedModel]:
    """Load every snapshot of ``settings`` (one-line CheckpointError/ConfigError naming the bad one)."""
    if settings.backend == "onnx" and not onnx_available():
        raise ConfigError("--backend onnx needs onnxruntime, onnx and onnxscript: pip install 'deconvgan[onnx]' "
                          "(or use --backend torch)")
    models = {}
    for name, given in settings.snapshots.items():
        path = resolve_snapshot_path(given)
        if path.suffix != ".safetensors":
            raise ConfigError(f"{path}: the server loads only .safetensors snapshots (written by deconvgan train); "
                              "give a snapshot file or a run directory")
        if not path.is_file():
            raise CheckpointError(f"{path}: no such snapshot file (model {name})")
        generator, info = load_snapshot(path, "cpu")
        models[name] = ServedModel(name=name, info=info, generator=fuse_for_inference(generator),
                                   checksum=file_sha256(path))
    return models


def warm_up(model: ServedModel, settings: ServeSettings) -> None:
    """Build the backend (whole-image models), calibrate it against batch composition, compute the latent
    directions and run every batch shape once. Seconds for small models; run off the event loop."""
    if model.is_texture:  # tiles and texture windows run deconvgan.tiles on the torch generator: warm it once
        from deconvgan.serve.render import texture_images

        texture_images(model, [0])
        return
    model.backend = _choose_backend(model, settings)
    model.backend.calibrate(model.latent_dim, model.info.model.num_classes)
    log.info("model %s: %s backend, rows padded to multiples of %d", model.name, model.backend.name,
             model.backend.row_block)
    if settings.directions:
        model.directions = compute_directions(model.generator, model.info.model, count=settings.directions,
                                              samples=settings.direction_samples)


def _choose_backend(model: ServedModel, settings: ServeSettings) -> ImageBackend:
    if settings.backend == "torch" or (settings.backend == "auto" and not onnx_available()):
        return torch_backend(model.generator, settings.max_batch)
    from deconvgan.export import ExportError

    try:
        return onnx_backend(model.generator, model.info, settings.max_batch, settings.threads)
    except ExportError as exc:  # e.g. a layer the exporter cannot translate: eager PyTorch still works
        note = f"model {model.name}: ONNX Runtime unavailable ({exc}); using PyTorch"
        model.notes.append(note)
        log.warning(note)
        return torch_backend(model.generator, settings.max_batch)
