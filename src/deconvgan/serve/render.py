"""Request parameters to generator inputs and pixels, through the same functions as the command line.

Seeds become latents with :func:`deconvgan.sampling.latents_for_seeds` (and classes with
``labels_for_seeds``: seed s draws class s mod K unless a class is given), interpolation paths with
``interpolation_path`` (slerp), texture windows with :func:`deconvgan.tiles.sample_textures` and
:func:`deconvgan.tiles.generate_window`: one way to turn seeds into pixels, whether asked over HTTP or
on the command line. Bad values raise :class:`~deconvgan.serve.problems.ApiError` (422) naming the field.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from deconvgan.errors import ConfigError
from deconvgan.sampling import interpolation_path, labels_for_seeds, latents_for_seeds, parse_class, parse_seeds
from deconvgan.serve.problems import ApiError
from deconvgan.serve.registry import ServedModel
from deconvgan.tiles import generate_window, sample_textures, to_pixels

TILE_PX = 256  # pixels per side of a map tile
ZOOMS = range(-2, 3)  # zoom z: a tile covers 256 * 2^-z texture pixels
MAX_TILE_INDEX = 2**20  # |x|, |y| of a tile: beyond, coordinates are a typo (and the field is as random there)
MAX_SEED = 2**63 - 1
TRUNCATION_RANGE = (1e-3, 100.0)
MAX_LATENT_ABS = 1000.0  # |component| of an explicit latent; a standard normal's are within +-6


def check_truncation(model: ServedModel, truncation: float | None) -> None:
    """422 unless ``truncation`` is None or a finite number in :data:`TRUNCATION_RANGE` (image models)."""
    if truncation is None:
        return
    if model.is_texture:
        raise ApiError(422, f"truncation applies to latent vectors; {model.name} is a texture model (latent "
                            "fields): drop it", field="truncation")
    low, high = TRUNCATION_RANGE
    if not (math.isfinite(truncation) and low <= truncation <= high):
        raise ApiError(422, f"truncation {truncation!r} must be a number in [{low:g}, {high:g}] (e.g. 0.7), or "
                            "null for none", field="truncation", limit=high)


def resolve_class(model: ServedModel, value: str | int | None) -> int | None:
    """A class name or id -> its id (None: none given); 422 naming the classes otherwise."""
    if value is None:
        return None
    names = model.info.class_names
    if not names:
        raise ApiError(422, f"model {model.name} is not class-conditional: drop class", field="class")
    text = str(value)
    try:
        class_id = parse_class(text, names) if text != "all" else None
    except ConfigError:
        shown = ", ".join(names[:12]) + (", ..." if len(names) > 12 else "")
        raise ApiError(422, f"class {text[:40]!r} is not a class of model {model.name}: give an id 0.."
                            f"{len(names) - 1} or a name ({shown})", field="class", limit=len(names) - 1) from None
    if class_id is None:
        raise ApiError(422, "class all: ask for one class per request (an id or a name)", field="class")
    return class_id


def parse_seed_field(value: str | list[int], limit: int) -> list[int]:
    """``"0-3,7"`` or ``[0, 1, 2, 3, 7]`` -> seeds, at most ``limit`` of them, each in [0, 2^63)."""
    if isinstance(value, str):
        if len(value) > 10_000:
            raise ApiError(422, "seeds: the text is over 10000 characters; ask for fewer seeds", field="seeds",
                           limit=limit)
        try:
            seeds = parse_seeds(value)
        except ConfigError as exc:
            if "more than" in str(exc):  # parse_seeds refuses over MAX_SEEDS before building the list
                raise ApiError(422, f"seeds name more than {limit} images: ask for at most {limit} per request",
                               field="seeds", limit=limit) from None
            raise ApiError(422, str(exc), field="seeds") from None
    else:
        seeds = list(value)
        if not seeds:
            raise ApiError(422, "seeds is empty: give at least one seed", field="seeds")
        if any(not 0 <= s <= MAX_SEED for s in seeds):
            raise ApiError(422, "seeds must be integers in [0, 2^63)", field="seeds", limit=MAX_SEED)
    if len(seeds) > limit:
        raise ApiError(422, f"{len(seeds)} seeds: at most {limit} images per request", field="seeds", limit=limit)
    return seeds


def seed_inputs(model: ServedModel, seeds: list[int], truncation: float | None,
                class_id: int | None) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(latents [N, D], labels [N] or None): exactly what ``deconvgan sample --seeds`` feeds the generator."""
    z = latents_for_seeds(seeds, model.latent_dim, truncation)
    k = model.info.model.num_classes
    return z, (labels_for_seeds(seeds, k, class_id) if k else None)


def explicit_inputs(model: ServedModel, latents: list[list[float]], class_id: int | None,
                    limit: int) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Latents given in a request -> float32 [N, D] (checked) and labels (default: class 0, as interpolate)."""
    if not latents:
        raise ApiError(422, "latents is empty: give at least one latent vector", field="latents")
    if len(latents) > limit:
        raise ApiError(422, f"{len(latents)} latents: at most {limit} images per request", field="latents",
                       limit=limit)
    bad = next((row for row in latents if len(row) != model.latent_dim), None)
    if bad is not None:
        raise ApiError(422, f"a latent of {len(bad)} numbers: model {model.name} takes {model.latent_dim}",
                       field="latents", limit=model.latent_dim)
    z = torch.tensor(latents, dtype=torch.float64)
    if not bool(torch.isfinite(z).all()) or float(z.abs().max()) > MAX_LATENT_ABS:
        raise ApiError(422, f"latents must be finite numbers within +-{MAX_LATENT_ABS:g}", field="latents",
                       limit=MAX_LATENT_ABS)
    k = model.info.model.num_classes
    labels = labels_for_seeds(list(range(len(latents))), k, class_id or 0) if k else None
    return z.float(), labels


def interpolation_inputs(model: ServedModel, seeds: list[int], frames: int, truncation: float | None,
                         class_id: int | None, limit: int) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The slerp path of ``deconvgan interpolate``: [(K-1) frames + 1, D] latents, all in one class
    (default class 0)."""
    if len(seeds) < 2:
        raise ApiError(422, "interpolation needs at least two seeds", field="seeds", limit=2)
    if any(not 0 <= s <= MAX_SEED for s in seeds):
        raise ApiError(422, "seeds must be integers in [0, 2^63)", field="seeds", limit=MAX_SEED)
    if frames < 1 or (len(seeds) - 1) * frames + 1 > limit:
        raise ApiError(422, f"frames={frames} per step between {len(seeds)} seeds: at most {limit} frames in all "
                            f"(frames >= 1)", field="frames", limit=limit)
    path = interpolation_path(latents_for_seeds(seeds, model.latent_dim, truncation), frames)
    k = model.info.model.num_classes
    labels = labels_for_seeds(list(range(len(path))), k, class_id or 0) if k else None
    return path, labels


def texture_images(model: ServedModel, seeds: list[int], class_id: int | None = None) -> torch.Tensor:
    """uint8 [N, C, R, R]: the training-size window of each seed's texture, as ``deconvgan sample`` draws it
    (a class-conditional texture model: seed s in class ``class_id``, by default s mod K)."""
    k = model.info.model.num_classes
    classes = {"labels": labels_for_seeds(seeds, k, class_id)} if k else {}
    return sample_textures(model.generator, seeds, model.info.model.resolution, tileable=model.info.model.tileable,
                           fuse=False, **classes)


def _shown(value: int) -> str:
    text = str(value)
    return text if len(text) <= 24 else text[:21] + "..."


def check_seed(seed: int, field: str = "seed") -> None:
    """422 unless ``seed`` is in [0, 2^63) (torch seeds are 64-bit)."""
    if not 0 <= seed <= MAX_SEED:
        raise ApiError(422, f"{field} {_shown(seed)} must be an integer in [0, 2^63)", field=field, limit=MAX_SEED)


def check_tile(zoom: int, x: int, y: int, seed: int) -> None:
    """422 for a zoom outside -2..2, a tile index beyond 2^20 or a seed outside [0, 2^63)."""
    if zoom not in ZOOMS:
        raise ApiError(422, f"zoom {_shown(zoom)} must be in {ZOOMS[0]}..{ZOOMS[-1]}", field="z", limit=ZOOMS[-1])
    for name, value in (("x", x), ("y", y)):
        if abs(value) > MAX_TILE_INDEX:
            raise ApiError(422, f"tile {name}={_shown(value)} must be within +-2^20", field=name, limit=MAX_TILE_INDEX)
    check_seed(seed)


def tile_pixels(model: ServedModel, seed: int, zoom: int, x: int, y: int, class_id: int | None = None) -> np.ndarray:
    """uint8 [256, 256, C]: tile (x, y) at zoom ``zoom`` of seed ``seed``'s unbounded texture.

    The tile covers texture pixels ``[y s, (y + 1) s) x [x s, (x + 1) s)`` with ``s = 256 * 2^-zoom``:
    zoom 0 is the texture itself, zoom > 0 enlarges it (nearest), zoom < 0 shrinks it (area average of
    the float pixels, then rounded as everywhere). The window comes from :func:`generate_window`, as
    ``deconvgan texture --no-tileable`` computes it, so tiles agree with it where they overlap.
    ``class_id``: the class of a class-conditional texture model.
    """
    span = TILE_PX * 2**-zoom if zoom <= 0 else TILE_PX >> zoom  # texture pixels per tile side
    top, left = y * span, x * span
    window = _aligned_window(model, seed, top, left, span, class_id)  # float [C, span, span]
    if zoom < 0:
        window = F.avg_pool2d(window[None], 2**-zoom)[0]  # area downscaling
    pixels = to_pixels(window)  # uint8 [h, w, C]
    if zoom > 0:
        pixels = pixels.repeat(2**zoom, axis=0).repeat(2**zoom, axis=1)  # nearest upscaling
    return pixels


def _aligned_window(model: ServedModel, seed: int, top: int, left: int, span: int,
                    class_id: int | None) -> torch.Tensor:
    # generate_window needs multiples of the generator's stride; tiles are, unless the stride exceeds 64
    s = model.generator.scale
    top0, left0 = top // s * s, left // s * s
    height = -(-(top + span) // s) * s - top0
    width = -(-(left + span) // s) * s - left0
    classes = {"class_id": class_id} if class_id is not None else {}
    window = generate_window(model.generator, seed, top0, left0, height, width, **classes)
    return window[:, top - top0:top - top0 + span, left - left0:left - left0 + span]

