"""Sampling and interpolation from a trained generator.

Each seed gets its own ``torch.Generator`` on the CPU, so the image for seed k is the same at any
batch size, on any device and in any process. Generation runs under ``torch.inference_mode``
in batches, with no per-image Python work, on a copy of the generator with its BatchNorms folded
into the layers before them (:func:`deconvgan.models.fuse_for_inference`).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from deconvgan.errors import ConfigError
from deconvgan.images import to_uint8
from deconvgan.models.fuse import fuse_for_inference

MAX_SEEDS = 100_000  # images one command draws; a bigger range is a typo (0-99999999999 would exhaust memory)


def parse_seeds(text: str) -> list[int]:
    """``"0-3,10"`` -> ``[0, 1, 2, 3, 10]`` (ranges inclusive, order kept, duplicates kept), at most
    :data:`MAX_SEEDS` of them."""
    seeds: list[int] = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        low, sep, high = part.partition("-")
        try:
            first, last = int(low), int(high if sep else low)
        except ValueError:
            raise ConfigError(f"seeds {text!r}: {part!r} is not a number or a range like 0-63") from None
        if last < first:
            raise ConfigError(f"seed range {part!r} runs backwards: write {last}-{first}")
        if len(seeds) + last - first + 1 > MAX_SEEDS:  # checked before the list is built
            raise ConfigError(f"seeds {text!r} name more than {MAX_SEEDS} images: draw fewer per command")
        seeds.extend(range(first, last + 1))
    if not seeds:
        raise ConfigError(f"seeds {text!r} names no seed: write e.g. 0-63 or 1,5,9")
    if any(s < 0 or s >= 2**63 for s in seeds):
        raise ConfigError(f"seeds {text!r}: seeds must be in [0, 2^63)")
    return seeds


def latents_for_seeds(seeds: list[int], latent_dim: int, truncation: float | None = None) -> torch.Tensor:
    """[len(seeds), latent_dim] standard-normal latents, row k drawn from seed k alone.

    ``truncation`` t (e.g. 1.0): a truncated normal on [-t, t] instead (the truncation trick of
    BigGAN: less variety, higher typical quality). None keeps the full normal.
    """
    if truncation is not None and not 0 < truncation < math.inf:  # NaN fails this too
        raise ConfigError(f"truncation={truncation} must be a finite number > 0 (or omitted for none)")
    rows = []
    for seed in seeds:
        gen = torch.Generator().manual_seed(seed)
        if truncation is None:
            rows.append(torch.randn(latent_dim, generator=gen))
        else:
            row = torch.empty(latent_dim)
            nn.init.trunc_normal_(row, mean=0.0, std=1.0, a=-truncation, b=truncation, generator=gen)
            rows.append(row)
    return torch.stack(rows)


def parse_class(text: str, class_names: tuple[str, ...]) -> int | None:
    """``--class`` of a conditional model: a class id (``"3"``) or name (``"Sneaker"``) -> its id;
    ``"all"`` -> None (every class). ConfigError naming the classes otherwise."""
    if not class_names:
        raise ConfigError(f"--class {text}: this snapshot's generator is not class-conditional (model.num_classes=0); "
                          "drop --class")
    if text == "all":
        return None
    if text in class_names:
        return class_names.index(text)
    if text.isdigit() and int(text) < len(class_names):
        return int(text)
    shown = ", ".join(class_names[:12]) + (f", ... ({len(class_names)} classes)" if len(class_names) > 12 else "")
    raise ConfigError(f"--class {text!r} is not a class of this snapshot: give an id 0..{len(class_names) - 1}, "
                      f"a name ({shown}) or all")


def labels_for_seeds(seeds: list[int], num_classes: int, class_id: int | None = None) -> torch.Tensor:
    """int64 [len(seeds)] classes for a conditional model: ``class_id`` for every seed, or by default
    ``seed mod num_classes`` -- like the latent, a function of the seed alone."""
    if class_id is not None:
        return torch.full((len(seeds),), class_id, dtype=torch.int64)
    return torch.tensor(seeds, dtype=torch.int64) % num_classes


@torch.inference_mode()
def generate(
    generator: nn.Module, latents: torch.Tensor, batch_size: int = 256, *, fuse: bool = True,
    labels: torch.Tensor | None = None,
) -> torch.Tensor:
    """uint8 [N, C, H, W] images for [N, latent_dim] latents, in eval mode, ``batch_size`` at a time.

    ``labels`` int64 [N]: the class of each image, for class-conditional generators, or float [N, K]
    class weights (:func:`class_path`) for their conditional batch norms (without labels a
    conditional generator draws sample ``i`` of class ``i mod K``; see :mod:`deconvgan.models.conditional`).

    ``fuse`` runs a copy of the generator with its BatchNorms folded into the preceding layers
    (:func:`~deconvgan.models.fuse.fuse_for_inference`): the same function up to float rounding,
    with one pass over each feature map fewer. ``generator`` is left as it was: it runs in eval mode
    only for the duration of the call, and each submodule's train/eval flag is put back afterwards.
    """
    # Per module, not one flag: a caller may keep some submodules in eval mode inside a training model.
    modes = {module: module.training for module in generator.modules()}
    try:
        generator.eval()
        device = next(generator.parameters()).device
        model = fuse_for_inference(generator) if fuse else generator
        if labels is None:
            chunks = [to_uint8(model(part.to(device))) for part in latents.split(batch_size)]
        else:
            if labels.shape[:1] != latents.shape[:1]:
                raise ValueError(f"labels {tuple(labels.shape)} do not match latents {tuple(latents.shape)}")
            chunks = [to_uint8(model(part.to(device), y.to(device)))
                      for part, y in zip(latents.split(batch_size), labels.split(batch_size), strict=True)]
        return torch.cat(chunks)
    finally:
        for module, training in modes.items():
            module.training = training


def slerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Spherical interpolation between latent vectors ``a`` and ``b`` [D] at fractions ``t`` [T] -> [T, D].

    Follows the great circle between the two directions while interpolating the norm linearly,
    which keeps intermediate latents at the norm the generator saw in training (a straight line
    between two Gaussian samples passes through improbably short vectors).
    """
    dtype = a.dtype
    # float64: for nearly opposite vectors sin(omega) is small, and float32 round-off divided by it
    # would bend the norm off the straight line between the endpoints' norms.
    a, b, t = a.double(), b.double(), t.double()[:, None]
    a_norm, b_norm = a.norm(), b.norm()
    a_unit, b_unit = a / a_norm, b / b_norm
    omega = torch.arccos((a_unit * b_unit).sum().clamp(-1.0, 1.0))
    if omega.abs() < 1e-6:  # parallel: any path is the straight one
        return ((1 - t) * a + t * b).to(dtype)
    sin = torch.sin(omega)
    direction = (torch.sin((1 - t) * omega) / sin) * a_unit + (torch.sin(t * omega) / sin) * b_unit
    direction = direction / direction.norm(dim=1, keepdim=True)  # unit up to round-off: make it exact
    return (direction * ((1 - t) * a_norm + t * b_norm)).to(dtype)


def interpolation_path(latents: torch.Tensor, frames_per_step: int) -> torch.Tensor:
    """Latents along slerp segments through each row of ``latents`` [K, D] -> [(K-1)*f + 1, D]."""
    if latents.shape[0] < 2:
        raise ConfigError("interpolation needs at least two seeds")
    if frames_per_step < 1:
        raise ConfigError(f"frames={frames_per_step} must be >= 1")
    t = torch.arange(frames_per_step, dtype=latents.dtype) / frames_per_step
    segments = [slerp(latents[i], latents[i + 1], t) for i in range(latents.shape[0] - 1)]
    return torch.cat([*segments, latents[-1:]])


def class_path(classes: list[int], num_classes: int, frames_per_step: int) -> torch.Tensor:
    """Class weights float [(len(classes) - 1) * f + 1, K] moving linearly from the one-hot row of each
    class to the next: what a conditional generator's batch norms blend to interpolate between classes."""
    if len(classes) < 2:
        raise ConfigError("an interpolation between classes needs at least two classes")
    if frames_per_step < 1:
        raise ConfigError(f"frames={frames_per_step} must be >= 1")
    one_hot = torch.eye(num_classes)
    t = (torch.arange(frames_per_step, dtype=torch.float32) / frames_per_step)[:, None]  # [f, 1]
    segments = [(1 - t) * one_hot[a] + t * one_hot[b] for a, b in zip(classes, classes[1:], strict=False)]
    return torch.cat([*segments, one_hot[classes[-1]][None]])
