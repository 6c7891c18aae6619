"""What a generator takes as input: a latent vector (whole-image models) or a latent field (spatial).

Two ways to get one:

* :func:`draw_latents` for training: a batch drawn from the step's ``torch.Generator``;
* :func:`seed_field` for textures: a window of an unbounded field that is a pure function of
  ``(seed, position)``. Local noise comes in blocks of ``BLOCK`` x ``BLOCK`` cells, block ``(by, bx)``
  drawn from its own generator seeded by ``derive_seed(seed, "field", by, bx)``; global and phase
  channels from ``derive_seed(seed, "global")``. So any window, at any offset and size, holds the same
  numbers as the same cells of any larger window: tiles generated on their own agree where they meet.
  With a ``period`` the field repeats (cell ``(y, x)`` is cell ``(y mod P_h, x mod P_w)``), which
  makes a tileable model's output repeat seamlessly.

Field channels, in order: local, global, phase (one per periodic channel), then two coordinate
channels (y, x in cells) when there are periodic channels (see :mod:`deconvgan.models.spatial`).
"""

from __future__ import annotations

import torch

from deconvgan.config import ModelConfig
from deconvgan.models.spatial import field_side
from deconvgan.seeds import derive_seed, make_generator

BLOCK = 16  # cells per side of one independently seeded block of local noise


def is_spatial(cfg: ModelConfig) -> bool:
    """True for generators that take a latent field (``model.arch: spatial``)."""
    return cfg.arch == "spatial"


def _assemble(cfg: ModelConfig, local: torch.Tensor, per_image: torch.Tensor, top: int, left: int) -> torch.Tensor:
    """[N, L, h, w] local + [N, G + P] per-image channels (+ coordinates) -> [N, field_channels, h, w]."""
    n, _, h, w = local.shape
    parts = [local, per_image[:, :, None, None].expand(n, per_image.shape[1], h, w)]
    if cfg.periodic_channels:
        ys = torch.arange(top, top + h, dtype=local.dtype, device=local.device)
        xs = torch.arange(left, left + w, dtype=local.dtype, device=local.device)
        grid = torch.stack(torch.meshgrid(ys, xs, indexing="ij"))  # [2, h, w]: y, x
        parts.append(grid.expand(n, 2, h, w))
    return torch.cat(parts, dim=1)


def draw_latents(cfg: ModelConfig, n: int, gen: torch.Generator, device: torch.device | str = "cpu",
                 field_size: tuple[int, int] | None = None) -> torch.Tensor:
    """A training batch of generator inputs drawn from ``gen``.

    Whole-image models: ``[n, latent_dim]`` standard normal. Spatial: ``[n, field_channels, h, w]``
    with ``(h, w)`` the training field (``resolution / 2^levels`` cells) unless ``field_size`` says.
    """
    if not is_spatial(cfg):
        return torch.randn(n, cfg.latent_dim, device=device, generator=gen)
    h, w = field_size or (field_side(cfg), field_side(cfg))
    local = torch.randn(n, cfg.local_channels, h, w, device=device, generator=gen)
    per_image = torch.randn(n, cfg.global_channels + cfg.periodic_channels, device=device, generator=gen)
    return _assemble(cfg, local, per_image, 0, 0)


def draw_labels(cfg: ModelConfig, n: int, gen: torch.Generator,
                device: torch.device | str = "cpu") -> torch.Tensor | None:
    """Class ids for a training batch of a conditional model: int64 ``[n]`` uniform over
    ``0..num_classes-1`` drawn from ``gen``; None (and no draw) for an unconditional model."""
    if not cfg.num_classes:
        return None
    return torch.randint(0, cfg.num_classes, (n,), device=device, generator=gen)


def _block(cfg: ModelConfig, seed: int, by: int, bx: int) -> torch.Tensor:
    gen = make_generator(derive_seed(seed, "field", by, bx))
    return torch.randn(cfg.local_channels, BLOCK, BLOCK, generator=gen)  # [L, BLOCK, BLOCK]


def seed_field(cfg: ModelConfig, seed: int, top: int, left: int, height: int, width: int,
               period: tuple[int, int] | None = None) -> torch.Tensor:
    """Cells ``[top, top + height) x [left, left + width)`` of seed ``seed``'s field: ``[1, C, height, width]``.

    Coordinates may be negative or beyond any size: the field is unbounded. With ``period=(P_h, P_w)``
    it repeats with that period. The result depends only on the arguments (not on other calls).
    """
    ys = torch.arange(top, top + height)
    xs = torch.arange(left, left + width)
    if period is not None:
        ys, xs = ys % period[0], xs % period[1]
    local = torch.empty(cfg.local_channels, height, width)
    by_all, bx_all = torch.div(ys, BLOCK, rounding_mode="floor"), torch.div(xs, BLOCK, rounding_mode="floor")
    for by in torch.unique(by_all).tolist():
        rows = (by_all == by).nonzero().squeeze(1)  # window rows in this block row
        for bx in torch.unique(bx_all).tolist():
            cols = (bx_all == bx).nonzero().squeeze(1)
            block = _block(cfg, seed, by, bx)
            inner_y, inner_x = ys[rows] - by * BLOCK, xs[cols] - bx * BLOCK
            local[:, rows[:, None], cols[None, :]] = block[:, inner_y[:, None], inner_x[None, :]]
    per_image = torch.randn(cfg.global_channels + cfg.periodic_channels,
                            generator=make_generator(derive_seed(seed, "global")))
    return _assemble(cfg, local[None], per_image[None], top, left)
