"""Per-layer summary of a model (output shapes and parameter counts) for ``deconvgan info``."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch
from torch import nn

from deconvgan.config import ModelConfig
from deconvgan.models.spatial import field_channels, field_side


@dataclass(frozen=True)
class LayerRow:
    """One call of a leaf module during the example forward pass."""

    name: str  # module path inside the model, e.g. "net.up1.conv"
    kind: str  # class name, e.g. "ConvTranspose2d"
    output_shape: tuple[int, ...]  # () when the output is not a tensor
    num_params: int  # the module's own parameters (including a spectral-norm original weight)


def _leaves(model: nn.Module) -> Iterator[tuple[str, nn.Module]]:
    """Modules without children; a parametrized module (e.g. spectral norm) counts as a leaf."""
    for name, module in model.named_modules():
        if ".parametrizations" in f".{name}":
            continue  # the parametrization's internals belong to the module they wrap
        children = [n for n, _ in module.named_children() if n != "parametrizations"]
        if not children:
            yield name, module


def count_params(model: nn.Module, trainable_only: bool = False) -> int:
    """Total number of parameters (shared parameters counted once)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


@torch.no_grad()
def model_summary(model: nn.Module, example_input: torch.Tensor) -> list[LayerRow]:
    """Run ``example_input`` through ``model`` and record each leaf module call, in call order.

    The pass runs in eval mode (so BatchNorm statistics and spectral-norm power iterations are not
    updated, and a batch of one works) and restores every module's train/eval flag afterwards.
    """
    rows: list[LayerRow] = []
    handles = []

    def hook_for(name: str, module: nn.Module) -> Callable[[nn.Module, tuple, object], None]:
        own = sum(p.numel() for p in module.parameters())  # leaves: own + parametrization originals

        def hook(_mod: nn.Module, _inputs: tuple, output: object) -> None:
            shape = tuple(output.shape) if isinstance(output, torch.Tensor) else ()
            rows.append(LayerRow(name or type(module).__name__, type(module).__name__, shape, own))

        return hook

    modes = {module: module.training for module in model.modules()}
    try:
        for name, module in _leaves(model):
            handles.append(module.register_forward_hook(hook_for(name, module)))
        model.eval()
        model(example_input)
    finally:
        for handle in handles:
            handle.remove()
        for module, training in modes.items():
            module.training = training
    return rows


def format_summary(rows: list[LayerRow], total_params: int | None = None, title: str | None = None) -> str:
    """An aligned text table: layer, type, output shape, #params; then the total.

    ``total_params`` defaults to the sum over ``rows``; pass :func:`count_params` of the model to
    include parameters of modules the example pass did not call.
    """
    total = sum(r.num_params for r in rows) if total_params is None else total_params
    header = ("layer", "type", "output shape", "params")
    body = [
        (r.name, r.kind, "x".join(str(d) for d in r.output_shape) or "-", f"{r.num_params:,}") for r in rows
    ]
    widths = [max(len(row[i]) for row in [header, *body]) for i in range(4)]

    def line(cells: tuple[str, str, str, str]) -> str:
        return "  ".join(
            [cells[0].ljust(widths[0]), cells[1].ljust(widths[1]), cells[2].ljust(widths[2]),
             cells[3].rjust(widths[3])]
        ).rstrip()

    rule = "-" * len(line(header))
    out = ([title] if title else []) + [line(header), rule] + [line(b) for b in body]
    out += [rule, f"Total params: {total:,}"]
    return "\n".join(out)


def example_inputs(cfg: ModelConfig, batch_size: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """Zero inputs ``(z, x)`` of the right shapes for summarising the generator and discriminator."""
    if cfg.arch == "spatial":  # a latent field of the training size
        side = field_side(cfg)
        return torch.zeros(batch_size, field_channels(cfg), side, side), torch.zeros(batch_size, *cfg.image_shape)
    return torch.zeros(batch_size, cfg.latent_dim), torch.zeros(batch_size, *cfg.image_shape)
