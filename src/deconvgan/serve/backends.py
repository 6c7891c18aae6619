"""What runs a whole-image generator for the server: ONNX Runtime or eager PyTorch, batch-composition proof.

* ``onnx``: the generator (batch norm folded) exported in memory with the same exporter settings as
  ``deconvgan export`` (:mod:`deconvgan.export`), checked against PyTorch, and run by an ONNX Runtime
  session. Nothing is written to disk.
* ``torch``: the folded generator in eager mode under ``torch.inference_mode``: what
  :func:`deconvgan.sampling.generate` (``deconvgan sample``) runs, with its rounding to uint8.

Batch composition. A request's images must not depend on what else was merged into its batch. On CPUs
the float result of a row can depend on the batch *size* (oneDNN and MKL pick kernels by shape: on the
development machine PyTorch's first Linear gives different low bits for batches of 1-11 rows than for 12
or more, while ONNX Runtime gives identical rows at any size), though not on the other rows' values.
So every backend is calibrated at start-up (:meth:`ImageBackend.calibrate`): rows computed alone are
compared bit for bit with the same rows inside mixed batches of every size the server uses; if they
differ, batches are padded to a multiple of :data:`ROW_BLOCK` rows, and that is checked the same way.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import torch
from torch import nn

from deconvgan.checkpoint import SnapshotInfo
from deconvgan.images import to_uint8
from deconvgan.models.fuse import fuse_for_inference

log = logging.getLogger("deconvgan.serve")

ROW_BLOCK = 16  # rows per padded block when a backend's rows depend on the batch size
CHECK_ATOL = 1e-4  # ONNX Runtime vs PyTorch, as deconvgan export checks it
Forward = Callable[[torch.Tensor, "torch.Tensor | None"], torch.Tensor]


class ImageBackend:
    """Runs ``forward(latents [n, D], labels [n] | None) -> float [n, C, H, W]`` in chunks of at most
    ``max_batch`` rows, padded to a multiple of :attr:`row_block` rows (see the module doc)."""

    def __init__(self, name: str, forward: Forward, max_batch: int) -> None:
        self.name, self._forward, self.max_batch = name, forward, max_batch
        self.row_block = 1  # set by calibrate()
        self.invariant = False  # calibrate() proved rows independent of batch size and companions

    def floats(self, latents: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """float32 [n, C, H, W] in [-1, 1] for latents [n, D] (and class ids [n])."""
        n, block = latents.shape[0], self.row_block
        padded = -(-n // block) * block
        if padded != n:  # repeat the first row: the padding's values cannot matter, only the shape
            latents = torch.cat([latents, latents[:1].expand(padded - n, -1)])
            labels = None if labels is None else torch.cat([labels, labels[:1].expand(padded - n)])
        chunk = -(-self.max_batch // block) * block  # a multiple of the block: every call stays one
        parts = []
        for start in range(0, padded, chunk):
            y = None if labels is None else labels[start:start + chunk]
            parts.append(self._forward(latents[start:start + chunk].contiguous(), y))
        return torch.cat(parts)[:n]

    def images(self, latents: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """uint8 [n, C, H, W], rounded as :func:`deconvgan.images.to_uint8` (``deconvgan sample``) does."""
        return to_uint8(self.floats(latents, labels))

    def calibrate(self, latent_dim: int, num_classes: int = 0) -> bool:
        """Choose :attr:`row_block` (1, else :data:`ROW_BLOCK`) so that rows do not depend on their batch;
        True when proved for every batch size up to ``max_batch``, False if even padding did not help."""
        for block in (1, ROW_BLOCK):
            self.row_block = block
            if self._rows_are_invariant(latent_dim, num_classes):
                self.invariant = True
                return True
        log.warning("%s backend: rows depend on their batch even padded to %d rows; images may differ by "
                    "float rounding between batches", self.name, ROW_BLOCK)
        self.invariant = False
        return False

    def _rows_are_invariant(self, latent_dim: int, num_classes: int) -> bool:
        gen = torch.Generator().manual_seed(20240607)
        probes = torch.randn(3, latent_dim, generator=gen)  # [3, D]
        probe_labels = torch.arange(3) % num_classes if num_classes else None
        alone = [self.floats(probes[i:i + 1], None if probe_labels is None else probe_labels[i:i + 1])
                 for i in range(3)]
        block = self.row_block
        sizes = sorted({max(3, n) for n in (2, 3, 5, 7, 12, 16, 33, self.max_batch, self.max_batch + 5)}
                       | set(range(block, self.max_batch + 1, block) if block > 1 else ()))
        for n in sizes:
            batch = torch.randn(n, latent_dim, generator=gen)  # different companions at every size
            labels = torch.randint(max(num_classes, 1), (n,), generator=gen) if num_classes else None
            places = (0, n // 2, n - 1)  # first, middle, last row (a chunk's tail)
            for i, place in enumerate(places):
                batch[place] = probes[i]
                if labels is not None:
                    labels[place] = probe_labels[i]
            out = self.floats(batch, labels)
            if not all(torch.equal(out[place], alone[i][0]) for i, place in enumerate(places)):
                return False
        return True


def torch_backend(generator: nn.Module, max_batch: int) -> ImageBackend:
    """Eager PyTorch on the generator's device; ``generator`` may already be folded (folding twice is harmless)."""
    fused = fuse_for_inference(generator)

    def forward(latents: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        device = next(fused.parameters()).device
        with torch.inference_mode():
            z = latents.to(device)
            out = fused(z) if labels is None else fused(z, labels.to(device))
        return out.float().cpu()

    return ImageBackend("torch", forward, max_batch)


def onnx_available() -> bool:
    """True when ONNX Runtime and the exporter's packages (onnx, onnxscript) can be imported."""
    import importlib.util

    return all(importlib.util.find_spec(m) is not None for m in ("onnxruntime", "onnx", "onnxscript"))


def onnx_backend(generator: nn.Module, info: SnapshotInfo, max_batch: int, threads: int | None = None) -> ImageBackend:
    """ONNX Runtime on an in-memory export of ``generator``; ExportError (one line) if it does not export
    or does not match PyTorch within :data:`CHECK_ATOL`."""
    import onnxruntime as ort

    from deconvgan import export as ex

    fused = fuse_for_inference(generator).cpu()
    model = info.model
    proto = ex.onnx_program(generator, info)
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3  # errors only: its warnings about unused initialisers are not ours
    if threads is not None:
        options.intra_op_num_threads = threads
    # No busy-waiting between calls: its spinning threads would take the cores the event loop needs to
    # parse the next requests (measured: 10x slower under 100 concurrent requests on 2 cores).
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    session = ort.InferenceSession(proto.SerializeToString(), options,
                                   providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]

    def forward(latents: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        feeds = {names[0]: latents.numpy()}
        if len(names) > 1:  # class-conditional: int64 class ids
            feeds[names[1]] = labels.numpy()
        return torch.from_numpy(session.run([ex.OUTPUT_NAME], feeds)[0])

    backend = ImageBackend("onnx", forward, max_batch)
    z = torch.randn(5, model.latent_dim, generator=torch.Generator().manual_seed(ex.CHECK_SEED))
    labels = torch.arange(5) % model.num_classes if model.num_classes else None
    with torch.inference_mode():
        expected = fused(z) if labels is None else fused(z, labels)
    diff = (backend.floats(z, labels) - expected).abs().max().item()
    if not diff <= CHECK_ATOL:  # NaN fails too
        raise ex.ExportError(f"{info.path}: ONNX Runtime differs from PyTorch by {diff:.3g} > {CHECK_ATOL:g}")
    return backend
