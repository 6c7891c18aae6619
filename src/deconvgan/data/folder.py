"""A folder of images (``data.source=folder``, ``data.path``): decoded once into a uint8 tensor.

Every non-hidden file under the folder (recursively; names starting with '.' are ignored, files
and folders alike) must be an image: PNG, JPEG, WebP, BMP, GIF (first frame) or TIFF. Images are
taken in the order of their relative paths, so the dataset is the same on every run.
"""

from __future__ import annotations

import contextlib
import io
import os
import struct
import warnings
import zlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps

from deconvgan.config import DataConfig, background_rgb
from deconvgan.data.archive import ARCHIVE_SUFFIXES, is_archive, read_archive
from deconvgan.data.dataset import ImageDataset, check_memory, keep_first, one_line
from deconvgan.errors import DataError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff")
# Pillow plugins tried when opening: the formats above only (the JPEG opener also returns the
# multi-picture MPO files some cameras write), so a file is never handed to an unrelated decoder.
PIL_FORMATS = ("PNG", "JPEG", "WEBP", "BMP", "GIF", "TIFF")
# Exceptions Pillow raises for damaged, truncated or hostile files.
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, IndexError, KeyError, struct.error, zlib.error,
                  Image.DecompressionBombError)
_ACCEPTED = " ".join(IMAGE_EXTENSIONS)
_SKIP_HINT = "remove it, or skip bad files with --skip-bad-files (data.skip_bad_files=true)"
_WARN_EXAMPLES = 5
RGB = tuple[int, int, int]
WHITE: RGB = (255, 255, 255)


class _BadImage(Exception):
    """Internal: why one file could not be used (turned into a DataError or a warning)."""


def list_folder(folder: Path) -> tuple[list[Path], list[Path]]:
    """(image files, other files) under ``folder``, hidden entries skipped, sorted by relative path."""

    def fail(err: OSError) -> None:
        raise DataError(f"{err.filename}: cannot list ({err.strerror}); fix its permissions or remove it")

    images: list[Path] = []
    others: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(folder, onerror=fail):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]  # prune hidden folders in place
        for name in filenames:
            if not name.startswith("."):
                path = Path(dirpath, name)
                (images if path.suffix.lower() in IMAGE_EXTENSIONS else others).append(path)

    def key(p: Path) -> tuple[str, ...]:
        return p.relative_to(folder).parts

    return sorted(images, key=key), sorted(others, key=key)


def _to_mode(img: Image.Image, channels: int, background: RGB = WHITE) -> Image.Image:
    """Convert to "L" (channels=1) or "RGB" (channels=3); transparency is composited onto ``background``."""
    if img.mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
        # 16-bit grayscale (PNG, TIFF): Pillow's convert("L") would clip at 255 instead of scaling.
        wide = np.asarray(img).astype(np.float64)
        img = Image.fromarray(np.clip(np.rint(wide * (255 / 65535)), 0, 255).astype(np.uint8), "L")
    elif img.mode == "F":
        raise _BadImage("32-bit floating-point image; convert it to 8-bit")
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in img.info:
        rgba = img.convert("RGBA")  # lossless for palette images (their transparency table becomes alpha)
        backdrop = Image.new("RGBA", rgba.size, (*background, 255))
        img = Image.alpha_composite(backdrop, rgba).convert("RGB")
    target = "L" if channels == 1 else "RGB"
    return img if img.mode == target else img.convert(target)


@contextlib.contextmanager
def opened_image(path: Path, channels: int, draft_side: int | None = None, background: RGB = WHITE,
                 data: bytes | None = None) -> Iterator[Image.Image]:
    """The decoded image at ``path`` (or in ``data``, an archive member's bytes): EXIF orientation
    applied, alpha composited onto ``background``, RGB or L.

    Every decoding failure inside the ``with`` block (the caller's resampling too) becomes one
    ``_BadImage`` with the reason. ``draft_side``: let libjpeg decode at 1/2..1/8 scale while both
    sides stay >= it (JPEG only; a no-op elsewhere), so huge photos decode fast.
    """
    if data is None and not path.is_file():
        raise _BadImage("not a regular file")
    try:
        with Image.open(path if data is None else io.BytesIO(data), formats=PIL_FORMATS) as img:
            if draft_side is not None:
                img.draft(img.mode, (draft_side, draft_side))
            img.load()  # decode now: a truncated or corrupt file fails here, not later
            yield _to_mode(ImageOps.exif_transpose(img), channels, background)
    except Image.DecompressionBombError as exc:
        raise _BadImage(f"too many pixels, a possible decompression bomb ({one_line(exc)})") from None
    except _DECODE_ERRORS as exc:
        raise _BadImage(f"unreadable or corrupt image ({type(exc).__name__}: {one_line(exc)})") from None


def channels_first(pixels: np.ndarray) -> np.ndarray:
    """``[H, W]`` (L) or ``[H, W, 3]`` (RGB) -> ``[C, H, W]``."""
    return pixels[None] if pixels.ndim == 2 else pixels.transpose(2, 0, 1)


def decode_image(path: Path, resolution: int, channels: int, background: RGB = WHITE,
                 data: bytes | None = None) -> np.ndarray:
    """Decode one image to uint8 ``[channels, resolution, resolution]``.

    EXIF orientation is applied; images with alpha (or a transparent palette colour) are composited
    onto ``background`` (white by default), then converted to RGB or L (ITU-R 601-2 luma). The image
    is resized with Lanczos (antialiased) so that its *shorter* side equals ``resolution``, and the
    centred square is kept -- done as one resample of the centred square crop box. Raises ``_BadImage`` with the reason.
    """
    # JPEGs decode at a reduced scale while >= 2 * resolution: Lanczos still does the final filtering.
    with opened_image(path, channels, 2 * resolution, background, data) as img:
        w, h = img.size
        side = min(w, h)
        box = ((w - side) / 2, (h - side) / 2, (w + side) / 2, (h + side) / 2)
        # reducing_gap: an exact integer box-reduce first while the image is > 3x the target,
        # then Lanczos; indistinguishable from a full Lanczos and far faster on large photos.
        img = img.resize((resolution, resolution), Image.Resampling.LANCZOS, box=box, reducing_gap=3.0)
        pixels = np.asarray(img, dtype=np.uint8)
    return channels_first(pixels)


def _try_decode(item: tuple[Path, bytes | None], resolution: int, channels: int, background: RGB) -> np.ndarray | str:
    try:
        return decode_image(item[0], resolution, channels, background, item[1])
    except _BadImage as exc:
        return str(exc)


def _folder_files(cfg: DataConfig) -> tuple[Path, list[tuple[Path, bytes | None]], list[Path]]:
    """(the folder or archive, its image files with their bytes when in an archive, its other files)."""
    if not cfg.path:
        raise DataError("data.source=folder needs data.path (the image folder): pass --data PATH")
    folder = Path(cfg.path).expanduser()
    if not folder.exists():
        raise DataError(f"{folder}: image folder not found; check data.path (--data)")
    if is_archive(folder):
        members = read_archive(folder)
        ours = [(folder / m.name, m.data) for m in members if Path(m.name).suffix.lower() in IMAGE_EXTENSIONS]
        return folder, ours, [folder / m.name for m in members if Path(m.name).suffix.lower() not in IMAGE_EXTENSIONS]
    if not folder.is_dir():
        raise DataError(f"{folder}: is a file, not a folder or an archive ({', '.join(ARCHIVE_SUFFIXES)}); set "
                        "data.path to the folder holding the images")
    images, others = list_folder(folder)
    return folder, [(p, None) for p in images], others


def load_folder(cfg: DataConfig, resolution: int, channels: int) -> ImageDataset:
    """Every image under ``cfg.path`` (a folder, or an archive read in memory: :mod:`.archive`) at
    ``[channels, resolution, resolution]``; no labels.

    A bad file (unknown extension, unreadable, corrupt, truncated) is a DataError naming it, or,
    with ``cfg.skip_bad_files``, is skipped and counted in one UserWarning.
    """
    folder, images, others = _folder_files(cfg)
    background = background_rgb(cfg.background)
    if not images:
        held = f"; it holds {len(others)} other file(s), e.g. {others[0].name}" if others else ""
        raise DataError(f"{folder}: no images found (accepted extensions: {_ACCEPTED}){held}")
    if others and not cfg.skip_bad_files:
        raise DataError(f"{others[0]}: not an image (accepted extensions: {_ACCEPTED}); {_SKIP_HINT}")
    bad: list[tuple[Path, str]] = [(p, "not an image file") for p in others]

    name = f"folder:{folder}"
    limit = keep_first(len(images), cfg.max_images)
    check_memory(limit, channels, resolution, name)
    out = torch.empty((limit, channels, resolution, resolution), dtype=torch.uint8)
    out_np = out.numpy()  # shares memory with out: decoded arrays are copied straight in
    count = 0
    workers = max(1, min(4, os.cpu_count() or 1))  # Pillow releases the GIL while decoding/resampling
    chunk = 32 * workers  # decode in ordered chunks so max_images can stop early
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for start in range(0, len(images), chunk):
            items = images[start:start + chunk]
            results = pool.map(_try_decode, items, [resolution] * len(items), [channels] * len(items),
                               [background] * len(items))
            for (path, _), result in zip(items, results, strict=True):
                if isinstance(result, str):
                    if not cfg.skip_bad_files:
                        raise DataError(f"{path}: {result}; {_SKIP_HINT}")
                    bad.append((path, result))
                elif count < limit:
                    out_np[count] = result
                    count += 1
            if count >= limit:
                break
    if count == 0:
        raise DataError(f"{folder}: none of the {len(images)} image files could be read (e.g. {bad[0][0]}: "
                        f"{bad[0][1]}); check the files")
    if bad:
        examples = ", ".join(f"{p.relative_to(folder)} ({why})" for p, why in bad[:_WARN_EXAMPLES])
        more = f" and {len(bad) - _WARN_EXAMPLES} more" if len(bad) > _WARN_EXAMPLES else ""
        message = f"{folder}: skipped {len(bad)} bad file(s) (data.skip_bad_files=true): {examples}{more}"
        warnings.warn(message, UserWarning, stacklevel=3)
    return ImageDataset(images=out[:count].clone() if count < limit else out, labels=None, name=name,
                        num_classes=None)
