"""Export a snapshot's generator for deployment: ONNX (ONNX Runtime and others) or torch.export ``.pt2``.

Both formats hold the generator with its BatchNorms folded (:func:`deconvgan.models.fuse_for_inference`),
take ``z`` float32 ``[batch, latent_dim]`` with a dynamic batch axis (class-conditional generators
also ``class`` int64 ``[batch]``, the class id of each image; the names are in the metadata), and
return ``image`` float32 ``[batch, C, R, R]`` in [-1, 1]; a texture model takes a latent field
``[batch, C_z, height, width]`` (a class-conditional one also ``class``) with all three axes dynamic
and returns ``[batch, C, 2^L height, 2^L width]``. The model config travels inside the file (ONNX
``metadata_props`` / ``.pt2`` extra files: key ``deconvgan.model`` holds its JSON,
``deconvgan.version`` the package version, ``deconvgan.classes`` the class names) and beside it in
``<out>.json``, which also records the inputs, outputs and the check.

Every export checks itself before anything is written: the exported program, loaded back, runs the
same latents as the PyTorch snapshot in eval mode at several batch sizes (1 and larger, proving the
dynamic axis; texture models also at two field sizes), and the largest absolute difference must be
within ``atol``. On failure nothing is written and :class:`ExportError` says why; files are written
atomically (:mod:`deconvgan.atomic`).

ONNX export uses the torch.export-based exporter (``torch.onnx.export(..., dynamo=True)``), which
needs the ``onnxscript`` package; the older TorchScript exporter is deprecated in torch >= 2.9.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import logging
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from deconvgan import __version__
from deconvgan.atomic import write_bytes, write_text
from deconvgan.checkpoint import SnapshotInfo, load_snapshot, resolve_snapshot_path
from deconvgan.config import ModelConfig
from deconvgan.errors import ConfigError, DeconvganError
from deconvgan.latents import draw_latents
from deconvgan.models.fuse import fuse_for_inference
from deconvgan.models.spatial import field_channels
from deconvgan.models.summary import example_inputs

FORMATS = ("onnx", "pt2")
INPUT_NAME, OUTPUT_NAME = "z", "image"
CLASS_INPUT_NAME = "class"  # class-conditional generators: int64 [batch], the class id of each image
MIN_OPSET = 18  # the torch.export-based exporter writes opset 18+; asking for less silently gives 18
CHECK_BATCH_SIZES = (1, 5, 32)  # 1 and larger ones: a batch axis baked in at trace time would fail here
CHECK_FIELD_SIZES = ((3, 5), (6, 4))  # texture models: two field sizes, so spatial axes baked in would fail too
EXAMPLE_BATCH = 2  # trace at 2, since torch.export specialises dimensions of size 0 and 1
CHECK_SEED = 20240607


class ExportError(DeconvganError):
    """An export failed, or its output did not match the PyTorch generator; nothing was written."""


@dataclass(frozen=True)
class ExportReport:
    """What :func:`export_onnx` / :func:`export_pt2` wrote and how well it matched PyTorch."""

    path: Path  # the model file
    sidecar: Path  # <path>.json: model config, inputs/outputs, check result
    format: str  # onnx | pt2
    model: ModelConfig
    opset: int | None  # ONNX opset of the file (None for pt2)
    max_abs_diff: float | None  # largest |exported - eager| over the check batches; None with check=False
    checked_batch_sizes: tuple[int, ...]  # () with check=False
    size_bytes: int


def default_out_path(snapshot_path: str | Path, fmt: str = "onnx") -> Path:
    """``runs/x/snapshot.safetensors`` -> ``runs/x/snapshot.onnx`` (a run directory: its snapshot's)."""
    return resolve_snapshot_path(snapshot_path).with_suffix(f".{fmt}")


def export(
    snapshot_path: str | Path, out_path: str | Path | None = None, *, fmt: str = "onnx",
    opset: int | None = None, check: bool = True, atol: float = 1e-4,
) -> ExportReport:
    """Export in format ``fmt`` (``onnx`` or ``pt2``): :func:`export_onnx` or :func:`export_pt2`."""
    if fmt not in FORMATS:
        raise ConfigError(f"export format {fmt!r} is not one of {', '.join(FORMATS)}")
    if fmt == "pt2":
        if opset is not None:
            raise ConfigError("--opset applies to ONNX only: drop it or use --format onnx")
        return export_pt2(snapshot_path, out_path, check=check, atol=atol)
    return export_onnx(snapshot_path, out_path, opset=opset, check=check, atol=atol)


def export_onnx(
    snapshot_path: str | Path, out_path: str | Path | None = None, *,
    opset: int | None = None, check: bool = True, atol: float = 1e-4,
) -> ExportReport:
    """Write the snapshot's generator as an ONNX model (latent ``z`` -> ``image``, dynamic batch).

    ``snapshot_path`` is a snapshot file or a run directory; ``out_path`` defaults to the snapshot's
    path with suffix ``.onnx`` (an existing directory receives that file name). ``opset`` defaults to
    the exporter's own choice. With ``check``, ONNX Runtime must reproduce PyTorch within ``atol``.
    """
    onnx = _require("onnx", "onnxscript", *(("onnxruntime",) if check else ()))[0]
    generator, info, out = _prepare(snapshot_path, out_path, "onnx")
    if opset is not None and not MIN_OPSET <= opset <= onnx.defs.onnx_opset_version():
        raise ConfigError(f"--opset {opset}: the ONNX exporter writes opsets {MIN_OPSET}.."
                          f"{onnx.defs.onnx_opset_version()}; pick one in that range or omit it")
    proto = onnx_program(generator, info, opset=opset)
    written_opset = next(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx"))
    if opset is not None and written_opset != opset:
        raise ExportError(f"{out}: not written: asked for opset {opset}, the exporter produced {written_opset}; "
                          "omit --opset")
    proto.doc_string = f"deconvgan generator: {_signature(info.model)} in [-1, 1]"
    for key, value in _metadata(info).items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.checker.check_model(proto)
    if proto.ByteSize() >= 2**31:  # protobuf's limit for one message; these generators are far below it
        raise ExportError(f"{out}: not written: the model is over 2 GB, too large for a single ONNX file")
    data = proto.SerializeToString()
    diff = _check_onnx(data, generator, info, out, atol) if check else None
    return _write(out, data, "onnx", info, written_opset, diff, check, atol)


def onnx_program(generator: nn.Module, info: SnapshotInfo, *, opset: int | None = None) -> Any:
    """The generator (batch norms folded) as an in-memory ONNX ``ModelProto``, with the exporter settings
    of :func:`export_onnx` (its inputs, dynamic axes and names); nothing checked or written. What a
    server runs under ONNX Runtime. ExportError in one line if the exporter fails."""
    fused = fuse_for_inference(generator).cpu()
    try:
        with _quiet_onnx_exporter():
            program = torch.onnx.export(
                fused, _example(info.model), input_names=_input_names(info.model), output_names=[OUTPUT_NAME],
                dynamic_shapes=_dynamic_shapes(info.model), opset_version=opset,
                dynamo=True, verbose=False,
            )
    except Exception as exc:  # the exporter's errors are long reports; keep the first line, chain the rest
        raise ExportError(f"{info.path}: torch.onnx could not export the generator ({_first_line(exc)}); "
                          "try --format pt2") from exc
    return program.model_proto


def export_pt2(
    snapshot_path: str | Path, out_path: str | Path | None = None, *, check: bool = True, atol: float = 1e-4,
) -> ExportReport:
    """Write the snapshot's generator as a ``torch.export`` program (``.pt2``, load with ``torch.export.load``).

    Same contract as :func:`export_onnx`; the metadata is in the archive's extra files
    (``torch.export.load(path, extra_files={"deconvgan.model": ""})`` fills them in). The check loads
    the serialised program back and compares its ``.module()`` with the eager generator.
    """
    generator, info, out = _prepare(snapshot_path, out_path, "pt2")
    fused = fuse_for_inference(generator)
    try:
        program = torch.export.export(fused, _example(info.model), dynamic_shapes=_dynamic_shapes(info.model))
    except Exception as exc:
        raise ExportError(f"{info.path}: torch.export could not export the generator ({_first_line(exc)}); "
                          "try --format onnx") from exc
    buffer = io.BytesIO()
    torch.export.save(program, buffer, extra_files=_metadata(info))
    data = buffer.getvalue()
    diff = None
    if check:
        loaded = torch.export.load(io.BytesIO(data)).module()
        diff = _compare(lambda *inputs: loaded(*inputs), generator, info, out, atol, "the torch.export program")
    return _write(out, data, "pt2", info, None, diff, check, atol)


def read_onnx_model_config(path: str | Path) -> ModelConfig:
    """The :class:`ModelConfig` stored in an exported ONNX file's ``deconvgan.model`` metadata."""
    from deconvgan.configio import from_dict

    onnx = _require("onnx")[0]
    props = {p.key: p.value for p in onnx.load(str(path), load_external_data=False).metadata_props}
    if "deconvgan.model" not in props:
        raise ExportError(f"{path}: an ONNX file without deconvgan.model metadata (not exported by deconvgan)")
    return from_dict(ModelConfig, json.loads(props["deconvgan.model"]), "model")


# --- helpers ------------------------------------------------------------------------------------


def _require(*modules: str) -> list[Any]:
    """Import optional dependencies, or say in one line how to install them."""
    import importlib

    try:
        return [importlib.import_module(m) for m in modules]
    except ImportError as exc:
        raise ExportError(f"ONNX export needs {exc.name}: pip install onnx onnxscript onnxruntime "
                          "(or pip install 'deconvgan[onnx]')") from None


def _prepare(snapshot_path: str | Path, out_path: str | Path | None, fmt: str) -> tuple[nn.Module, SnapshotInfo, Path]:
    source = resolve_snapshot_path(snapshot_path)
    generator, info = load_snapshot(source)  # eval mode, CPU; one-line CheckpointError if unusable
    out = Path(out_path) if out_path is not None else default_out_path(source, fmt)
    if out.is_dir():
        out = out / default_out_path(source, fmt).name
    if out.resolve() == source.resolve():
        raise ConfigError(f"--out {out} is the snapshot itself: choose another path (e.g. {source.stem}.{fmt})")
    return generator, info, out


def _example(model: ModelConfig) -> tuple[torch.Tensor, ...]:
    """What the exporters trace: ``(z,)``, or ``(z, class)`` for a class-conditional generator."""
    z = example_inputs(model, EXAMPLE_BATCH)[0]
    return (z, torch.arange(EXAMPLE_BATCH) % model.num_classes) if model.num_classes else (z,)


def _input_names(model: ModelConfig) -> list[str]:
    return [INPUT_NAME, CLASS_INPUT_NAME] if model.num_classes else [INPUT_NAME]


def _dynamic_shapes(model: ModelConfig) -> tuple[dict[int, Any], ...]:
    """Batch is dynamic (one axis shared by z and class); for texture models (latent fields) so are the
    field's height and width."""
    batch = torch.export.Dim("batch", min=1)
    axes: dict[int, Any] = {0: batch}
    if model.arch == "spatial":  # size-1 axes would be specialised by torch.export: fields of >= 2 cells
        axes |= {2: torch.export.Dim("height", min=2), 3: torch.export.Dim("width", min=2)}
    return (axes, {0: batch}) if model.num_classes else (axes,)


def _signature(model: ModelConfig) -> str:
    classes = f", class int64 [batch] in 0..{model.num_classes - 1}" if model.num_classes else ""
    if model.arch == "spatial":
        s = 2**model.levels
        return (f"z [batch, {field_channels(model)}, height, width] (latent field){classes} -> "
                f"image [batch, {model.channels}, {s} height, {s} width]")
    return (f"z [batch, {model.latent_dim}]{classes} -> "
            f"image [batch, {model.channels}, {model.resolution}, {model.resolution}]")


def _check_inputs(model: ModelConfig, rng: torch.Generator) -> Iterator[tuple[torch.Tensor, ...]]:
    """The inputs every export is checked on: several batch sizes (and, for fields, two field sizes;
    for class-conditional generators, random classes)."""
    for i, n in enumerate(CHECK_BATCH_SIZES):
        if model.arch == "spatial":
            size = CHECK_FIELD_SIZES[i % len(CHECK_FIELD_SIZES)]
            field = draw_latents(model, n, rng, field_size=size)  # [n, C, h, w]
            yield (field, torch.randint(model.num_classes, (n,), generator=rng)) if model.num_classes else (field,)
        elif model.num_classes:
            yield torch.randn(n, model.latent_dim, generator=rng), torch.randint(model.num_classes, (n,), generator=rng)
        else:
            yield (torch.randn(n, model.latent_dim, generator=rng),)  # [n, latent_dim]


def _metadata(info: SnapshotInfo) -> dict[str, str]:
    snapshot = {"step": info.step, "kimg": info.kimg, "run_name": info.run_name, "dataset": info.dataset,
                "written_by": info.package_version}
    classes = {"deconvgan.classes": json.dumps(list(info.class_names))} if info.model.num_classes else {}
    return {
        "deconvgan.model": json.dumps(dataclasses.asdict(info.model)),
        "deconvgan.version": __version__,
        "deconvgan.snapshot": json.dumps(snapshot),
        **classes,
    }


def _check_onnx(data: bytes, generator: nn.Module, info: SnapshotInfo, out: Path, atol: float) -> float:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL  # check what users will run
    session = ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])
    names = _input_names(info.model)

    def run(*inputs: torch.Tensor) -> torch.Tensor:
        feeds = {name: x.numpy() for name, x in zip(names, inputs, strict=True)}
        return torch.from_numpy(session.run([OUTPUT_NAME], feeds)[0])

    return _compare(run, generator, info, out, atol, "ONNX Runtime")


def _compare(
    run: Callable[..., torch.Tensor], generator: nn.Module, info: SnapshotInfo, out: Path,
    atol: float, what: str,
) -> float:
    """Largest |run(z) - generator(z)| over :data:`CHECK_BATCH_SIZES`; ExportError above ``atol``."""
    rng = torch.Generator().manual_seed(CHECK_SEED)
    worst = 0.0
    for inputs in _check_inputs(info.model, rng):
        n = inputs[0].shape[0]
        with torch.inference_mode():
            expected = generator(*inputs)  # [n, C, R, R], the unfused eval-mode snapshot: the ground truth
            got = run(*inputs)
        if tuple(got.shape) != tuple(expected.shape):
            raise ExportError(f"{out}: not written: {what} returns shape {tuple(got.shape)} for a batch of {n}, "
                              f"PyTorch {tuple(expected.shape)}; pass --no-check to write it anyway")
        diff = (got.float() - expected).abs().max().item()
        diff = diff if diff == diff else float("inf")  # NaN anywhere counts as a mismatch
        worst = max(worst, diff)
        if worst > atol:
            raise ExportError(f"{out}: not written: {what} differs from PyTorch by {worst:.3g} > atol {atol:g} "
                              f"at batch {n}; pass --no-check to write it anyway")
    return worst


def _write(
    out: Path, data: bytes, fmt: str, info: SnapshotInfo, opset: int | None, diff: float | None,
    check: bool, atol: float,
) -> ExportReport:
    model = info.model
    sidecar = out.with_name(out.name + ".json")
    description = {
        "format": f"deconvgan-{fmt}",
        "package_version": __version__,
        "file": out.name,
        "opset": opset,
        "inputs": [{"name": INPUT_NAME, "dtype": "float32", "shape": _input_shape(model)}]
        + ([{"name": CLASS_INPUT_NAME, "dtype": "int64", "shape": ["batch"], "classes": list(info.class_names)}]
           if model.num_classes else []),
        "outputs": [{"name": OUTPUT_NAME, "dtype": "float32", "shape": _output_shape(model), "range": [-1.0, 1.0]}],
        "model": dataclasses.asdict(model),
        "snapshot": {"path": str(info.path), **json.loads(_metadata(info)["deconvgan.snapshot"])},
        "check": {"max_abs_diff": diff, "atol": atol, "batch_sizes": list(CHECK_BATCH_SIZES)} if check else None,
    }
    write_bytes(out, data)
    try:
        write_text(sidecar, json.dumps(description, indent=2) + "\n")
    except BaseException:
        out.unlink(missing_ok=True)  # never leave a model without its description
        raise
    return ExportReport(
        path=out, sidecar=sidecar, format=fmt, model=model, opset=opset, max_abs_diff=diff,
        checked_batch_sizes=CHECK_BATCH_SIZES if check else (), size_bytes=len(data),
    )


def _input_shape(model: ModelConfig) -> list[int | str]:
    if model.arch == "spatial":
        return ["batch", field_channels(model), "height", "width"]
    return ["batch", model.latent_dim]


def _output_shape(model: ModelConfig) -> list[int | str]:
    if model.arch == "spatial":
        s = 2**model.levels
        return ["batch", model.channels, f"{s}*height", f"{s}*width"]
    return ["batch", *model.image_shape]


def _first_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__


@contextlib.contextmanager
def _quiet_onnx_exporter() -> Iterator[None]:
    """Silence two pieces of noise the torch.onnx exporter (torch 2.13) makes on every export:

    * WARNING log lines that do not concern us ("torchvision is not installed. Skipping
      torchvision::nms", ...: it registers translations for torchvision ops we never use);
    * a FutureWarning ("isinstance(treespec, LeafSpec) is deprecated") raised inside torch itself,
      when its decomposition pass deep-copies the exported program's call graph: torch's own code
      using its own deprecated API, nothing we call. Only that message is ignored;
    * for class-conditional generators, a UserWarning that ``z`` and ``class`` share the batch axis,
      which is what the export asks for.
    """
    loggers = [logging.getLogger(name) for name in ("torch.onnx", "onnxscript")]
    levels = [logger.level for logger in loggers]
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"`isinstance\(treespec, LeafSpec\)` is deprecated",
                                category=FutureWarning)
        # z and class share one batch axis on purpose (conditional generators); the exporter notes it
        warnings.filterwarnings("ignore", message=r"# The axis name: batch will not be used")
        for logger in loggers:
            logger.setLevel(logging.ERROR)
        try:
            yield
        finally:
            for logger, level in zip(loggers, levels, strict=True):
                logger.setLevel(level)
