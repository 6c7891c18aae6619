"""Bytes on the wire: PNG (as ``deconvgan sample`` writes it), PNG grids and strips, GIF, ``.npy``, ETags.

The PNG, grid and GIF encoders are the ones :mod:`deconvgan.images` uses for files (``to_pil``,
``make_grid``, the same PIL calls as ``save_png`` / ``save_gif``), into memory instead of a file, so a
served image has the bytes of the file ``deconvgan sample`` / ``interpolate`` would write.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json

import numpy as np
import torch
from PIL import Image

from deconvgan.images import make_grid, to_pil

GIF_FRAME_MS = 80  # deconvgan interpolate's default --frame-ms


def png_bytes(image: torch.Tensor, scale: int = 1) -> bytes:
    """uint8 [C, H, W] -> PNG bytes, enlarged ``scale`` times (nearest), as :func:`deconvgan.images.save_png`."""
    pil = to_pil(image)
    if scale > 1:
        pil = pil.resize((pil.width * scale, pil.height * scale), Image.NEAREST)
    buffer = io.BytesIO()
    pil.save(buffer, format="PNG")
    return buffer.getvalue()


def pixels_png(pixels: np.ndarray) -> bytes:
    """uint8 [H, W, C] (channels last, as :func:`deconvgan.tiles.to_pixels` gives) -> PNG bytes."""
    return png_bytes(torch.from_numpy(np.ascontiguousarray(pixels)).permute(2, 0, 1))


def grid_png(images: torch.Tensor, columns: int | None = None, scale: int = 1) -> bytes:
    """uint8 [N, C, H, W] as one PNG grid (:func:`deconvgan.images.make_grid`: 2-pixel gaps), like
    ``deconvgan sample --grid`` (``columns=None``: a square-ish grid) and ``interpolate``'s strip
    (``columns=N``: one row)."""
    return png_bytes(make_grid(images, columns=columns), scale)


def gif_bytes(images: torch.Tensor, scale: int = 1, frame_ms: int = GIF_FRAME_MS) -> bytes:
    """uint8 [F, C, H, W] as a looping animated GIF, frames as ``deconvgan interpolate`` makes them."""
    frames = [to_pil(im).convert("RGB") for im in images]
    frames = [f.resize((f.width * scale, f.height * scale), Image.NEAREST) for f in frames]
    buffer = io.BytesIO()
    frames[0].save(buffer, format="GIF", save_all=True, append_images=frames[1:], duration=frame_ms, loop=0)
    return buffer.getvalue()


def npy_bytes(images: torch.Tensor) -> bytes:
    """uint8 [N, C, H, W] -> ``numpy.save`` bytes of the uint8 array [N, H, W, C] (channels last, as images
    are usually held): ``numpy.load(io.BytesIO(body))``."""
    buffer = io.BytesIO()
    np.save(buffer, np.ascontiguousarray(images.permute(0, 2, 3, 1).numpy()), allow_pickle=False)
    return buffer.getvalue()


def data_url(png: bytes) -> str:
    """``data:image/png;base64,...`` for a PNG."""
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def make_etag(*parts: object) -> str:
    """A strong ETag (quoted) from everything the bytes depend on: a sha256 of the parts' JSON."""
    text = json.dumps([p if isinstance(p, (str, int, float, bool, type(None))) else str(p) for p in parts])
    return '"' + hashlib.sha256(text.encode()).hexdigest()[:32] + '"'
