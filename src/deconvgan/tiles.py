"""Textures of any size from a spatial generator, window by window, in bounded memory.

A spatial generator maps a latent field to pixels with a finite reach: output pixels depend only on
field cells within ``generator.margin`` cells (:func:`deconvgan.models.spatial.margin_cells`). So a
window of the image is computed from the same window of the field padded by that margin, and cropped:
the result equals the same region of a whole-image pass, to float rounding. Together with a field
that is a pure function of ``(seed, position)`` (:func:`deconvgan.latents.seed_field`), any window of
an unbounded texture can be generated on its own, and a 16384² image is generated tile by tile and
streamed into a PNG without ever being in memory.

Two kinds of texture:

* unbounded (``tileable=False``): the window ``[0, H) x [0, W)`` of the seed's infinite texture;
* tileable (``tileable=True``): the field repeats with period ``(H, W) / 2^levels`` cells, so the image
  repeats with period ``(H, W)`` pixels: its right edge continues into its left, its bottom into its top.
  With a tileable model (circular blocks) this equals one whole pass over the periodic field.

A class-conditional texture model (``model.num_classes > 0``, e.g. one model of several materials) draws
the texture of one class: every function takes ``class_id`` (required for such a model, refused for
others); :func:`sample_textures` takes a class per seed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
from torch import nn

from deconvgan.atomic import atomic_path
from deconvgan.errors import ConfigError
from deconvgan.latents import is_spatial, seed_field
from deconvgan.pngstream import PngStreamWriter

DEFAULT_TILE = 512  # pixels per tile side: large enough that the margin costs little, small enough for memory


def check_texture_size(generator: nn.Module, height: int, width: int) -> None:
    """One-line ConfigError unless ``generator`` is spatial and the size a positive multiple of its stride."""
    cfg = generator.config
    if not is_spatial(cfg):
        raise ConfigError(f"a {cfg.arch} generator draws fixed {cfg.resolution}-pixel images; textures of any size "
                          "need a texture model (model.arch=spatial, e.g. the texture preset)")
    s = generator.scale
    for name, value in (("height", height), ("width", width)):
        if value <= 0 or value % s:
            near = max(s, round(value / s) * s)
            raise ConfigError(f"texture {name} {value} is not a positive multiple of the generator's stride "
                              f"{s} (2^levels): try {near}")


def check_texture_class(generator: nn.Module, class_id: int | None) -> tuple[torch.Tensor, ...]:
    """The extra generator input for ``class_id``: ``(labels [1],)`` for a class-conditional model, ``()``
    otherwise. One-line ConfigError when a conditional model gets no class (or one out of range), or an
    unconditional one gets a class."""
    classes = generator.config.num_classes
    if not classes:
        if class_id is not None:
            raise ConfigError(f"class {class_id}: this texture model is not class-conditional "
                              "(model.num_classes=0); leave the class out")
        return ()
    if class_id is None or not 0 <= class_id < classes:
        raise ConfigError(f"class {class_id}: a class-conditional texture model draws one of its {classes} classes; "
                          f"choose a class id 0..{classes - 1}")
    return (torch.tensor([class_id], dtype=torch.int64, device=next(generator.parameters()).device),)


def _on_device(field: torch.Tensor, generator: nn.Module) -> torch.Tensor:
    # channels_last: oneDNN's transposed convolutions run 2-3x faster on it than on NCHW (same values)
    return field.to(next(generator.parameters()).device, memory_format=torch.channels_last)


def generate_window(generator: nn.Module, seed: int, top: int, left: int, height: int, width: int,
                    period: tuple[int, int] | None = None, *, class_id: int | None = None) -> torch.Tensor:
    """Pixels ``[top, top + height) x [left, left + width)`` of seed ``seed``'s texture: float ``[C, h, w]``.

    All four numbers (and ``period``, in pixels) must be multiples of ``generator.scale``. ``generator``
    should be in eval mode (e.g. :func:`~deconvgan.models.fuse_for_inference`); it is not modified.
    ``class_id``: the class of a class-conditional model (see :func:`check_texture_class`).
    """
    labels = check_texture_class(generator, class_id)
    s, m = generator.scale, generator.margin
    cells = [v // s for v in (top, left, height, width)]
    period_cells = (period[0] // s, period[1] // s) if period is not None else None
    field = seed_field(generator.config, seed, cells[0] - m, cells[1] - m, cells[2] + 2 * m, cells[3] + 2 * m,
                       period=period_cells)
    with torch.inference_mode():
        image = generator(_on_device(field, generator), *labels)[0]  # [C, (h + 2m) s, (w + 2m) s]
    return image[:, m * s:m * s + height, m * s:m * s + width]


def texture_bands(generator: nn.Module, seed: int, height: int, width: int, *, tileable: bool = False,
                  tile: int = DEFAULT_TILE, class_id: int | None = None) -> Iterator[torch.Tensor]:
    """The texture as horizontal bands, top to bottom: float ``[C, band_h, width]`` each, tile by tile."""
    check_texture_size(generator, height, width)
    check_texture_class(generator, class_id)
    s = generator.scale
    tile = max(s, tile // s * s)
    period = (height, width) if tileable else None
    for top in range(0, height, tile):
        band_h = min(tile, height - top)
        band = None
        for left in range(0, width, tile):
            window = generate_window(generator, seed, top, left, band_h, min(tile, width - left), period,
                                     class_id=class_id)
            if band is None:  # written in place, tile by tile: no second copy of the band
                band = window.new_empty(window.shape[0], band_h, width)
            band[:, :, left:left + window.shape[2]] = window
        yield band


def generate_texture(generator: nn.Module, seed: int, height: int, width: int, *, tileable: bool = False,
                     tile: int = DEFAULT_TILE, class_id: int | None = None) -> torch.Tensor:
    """The whole texture in memory as float ``[C, height, width]`` in [-1, 1] (see :func:`write_texture_png`
    for sizes that should not be in memory); ``class_id`` for a class-conditional model."""
    bands = texture_bands(generator, seed, height, width, tileable=tileable, tile=tile, class_id=class_id)
    return torch.cat(list(bands), dim=1)


def whole_texture(generator: nn.Module, seed: int, height: int, width: int, *, tileable: bool = False,
                  class_id: int | None = None) -> torch.Tensor:
    """The same texture from one generator pass (no tiles): the reference tiled generation must equal.

    Tileable: the periodic field of exactly one period through the circular blocks. Otherwise one
    window with its margin. Memory grows with the size: for tests and small images.
    """
    check_texture_size(generator, height, width)
    if not tileable:
        return generate_window(generator, seed, 0, 0, height, width, class_id=class_id)
    labels = check_texture_class(generator, class_id)
    s = generator.scale
    field = seed_field(generator.config, seed, 0, 0, height // s, width // s, period=(height // s, width // s))
    with torch.inference_mode():
        return generator(_on_device(field, generator), *labels)[0]


def to_pixels(image: torch.Tensor, bits: int = 8) -> np.ndarray:
    """float ``[C, h, w]`` in [-1, 1] -> ``[h, w, C]`` uint8 (bits=8) or uint16 (bits=16), rounded."""
    top = 2**bits - 1
    scaled = image.detach().float().add(1).mul_(top / 2).round_().clamp_(0, top)  # as images.to_uint8 rounds
    return scaled.permute(1, 2, 0).cpu().numpy().astype(np.uint8 if bits == 8 else np.uint16)


def write_texture_png(generator: nn.Module, seed: int, height: int, width: int, path: str | Path, *,
                      tileable: bool = False, bits: int = 8, tile: int = DEFAULT_TILE,
                      on_band: Callable[[int], None] | None = None, class_id: int | None = None) -> Path:
    """Generate the texture band by band into a PNG at ``path`` (atomically); memory stays bounded.

    ``on_band(rows)`` is called after each band (for a progress bar); ``class_id`` picks the class of a
    class-conditional model. Returns ``path``.
    """
    check_texture_size(generator, height, width)
    check_texture_class(generator, class_id)
    if bits not in (8, 16):
        raise ConfigError(f"--bits {bits}: PNG textures are 8 or 16 bits per channel")
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise ConfigError(f"{path}: textures are written as PNG; give a path ending in .png")
    # One thread compresses band k (zlib releases the GIL) while the generator computes band k + 1.
    with atomic_path(path) as tmp, open(tmp, "wb") as out, ThreadPoolExecutor(max_workers=1) as encoder:
        writer = PngStreamWriter(out, width, height, generator.config.channels, bits)
        pending = None
        for band in texture_bands(generator, seed, height, width, tileable=tileable, tile=tile, class_id=class_id):
            pixels = to_pixels(band, bits)
            if pending is not None:
                pending.result()  # bands go in order; at most two are in memory
            pending = encoder.submit(writer.write_rows, pixels)
            if on_band is not None:
                on_band(band.shape[1])
        if pending is not None:
            pending.result()
        writer.close()
    return path


def sample_textures(generator: nn.Module, seeds: list[int], size: int, *, tileable: bool = False,
                    fuse: bool = True, labels: torch.Tensor | list[int] | None = None) -> torch.Tensor:
    """uint8 ``[len(seeds), C, size, size]``: the top-left ``size``-pixel window of each seed's texture
    (tileable: the whole period of a ``size``-pixel tile). ``fuse``: run a copy with batch norm folded
    (pass False for a generator that is already a fused copy). ``labels``: the class of each seed for a
    class-conditional model (default: seed ``s`` draws class ``s mod K``, as ``deconvgan sample`` does)."""
    from deconvgan.images import to_uint8
    from deconvgan.models.fuse import fuse_for_inference
    from deconvgan.sampling import labels_for_seeds

    classes = generator.config.num_classes
    if labels is None:
        labels = labels_for_seeds(seeds, classes) if classes else [None] * len(seeds)
    class_ids = [None if k is None else int(k) for k in labels]
    if len(class_ids) != len(seeds):
        raise ValueError(f"{len(class_ids)} labels for {len(seeds)} seeds")
    model = fuse_for_inference(generator) if fuse else generator
    return to_uint8(torch.stack([generate_texture(model, seed, size, size, tileable=tileable, class_id=k)
                                 for seed, k in zip(seeds, class_ids, strict=True)]))
