"""Images in and out: float tensors in [-1, 1] to uint8, grids, PNG files and animated GIFs."""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from deconvgan.atomic import write_bytes


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """[N, C, H, W] floats in [-1, 1] -> uint8 [N, C, H, W] (rounded, clamped), on the CPU."""
    return images.detach().float().add(1).mul(127.5).round().clamp(0, 255).to(torch.uint8).cpu()


def make_grid(images: torch.Tensor, columns: int | None = None, padding: int = 2) -> torch.Tensor:
    """Tile uint8 [N, C, H, W] images into one uint8 [C, rows*(H+p)+p, cols*(W+p)+p] image."""
    n, c, h, w = images.shape
    columns = columns or math.ceil(math.sqrt(n))
    rows = math.ceil(n / columns)
    grid = torch.zeros(c, rows * (h + padding) + padding, columns * (w + padding) + padding, dtype=torch.uint8)
    for i in range(n):
        r, col = divmod(i, columns)
        top, left = padding + r * (h + padding), padding + col * (w + padding)
        grid[:, top:top + h, left:left + w] = images[i]
    return grid


def to_pil(image: torch.Tensor) -> Image.Image:
    """uint8 [C, H, W] (C = 1 or 3) -> a PIL image (mode L or RGB)."""
    array = image.permute(1, 2, 0).numpy()
    if array.shape[2] == 1:
        return Image.fromarray(np.ascontiguousarray(array[:, :, 0]), mode="L")
    return Image.fromarray(np.ascontiguousarray(array), mode="RGB")


def save_png(image: torch.Tensor, path: str | Path, scale: int = 1) -> None:
    """Atomically write uint8 [C, H, W] as PNG, optionally enlarged ``scale`` times (nearest)."""
    pil = to_pil(image)
    if scale > 1:
        pil = pil.resize((pil.width * scale, pil.height * scale), Image.NEAREST)
    buffer = io.BytesIO()
    pil.save(buffer, format="PNG")
    write_bytes(path, buffer.getvalue())


def save_gif(frames: Sequence[Image.Image], path: str | Path, frame_ms: int = 200, loop: bool = True) -> None:
    """Atomically write PIL frames as an animated GIF."""
    if not frames:
        raise ValueError("save_gif needs at least one frame")
    buffer = io.BytesIO()
    frames[0].save(
        buffer, format="GIF", save_all=True, append_images=list(frames[1:]),
        duration=frame_ms, loop=0 if loop else 1,
    )
    write_bytes(path, buffer.getvalue())


def display_scale(resolution: int) -> int:
    """An integer enlargement that makes small images visible (16 px -> 4x, 64 px -> 1x)."""
    return max(1, 64 // resolution)
