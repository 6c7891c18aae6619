"""Real-data feature statistics cached on disk: safetensors (features, mu, sigma) + JSON, never pickle.

Features of the real images take the longest part of an evaluation (Inception on a CPU runs at a
few images per second), and they never change for a given dataset, split, resolution, extractor
and sample count; so they are computed once and kept under ``<cache root>/features/``. The key
also covers a checksum of the exact images, so a changed folder dataset is never served stale
statistics. Files are written atomically; a corrupt or mismatching file is reported by one
warning and recomputed, and nothing in either file can run code when read.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from deconvgan import __version__
from deconvgan.atomic import write_text, write_with
from deconvgan.metrics.frechet import feature_statistics

CACHE_ENV = "DECONVGAN_CACHE"
DEFAULT_CACHE_ROOT = Path("~/.cache/deconvgan")
STATS_FORMAT = "deconvgan-feature-stats"
STATS_FORMAT_VERSION = 1


class CacheWarning(UserWarning):
    """A cache file was unreadable or inconsistent and has been recomputed."""


def cache_root(override: str | Path | None = None) -> Path:
    """The cache folder: ``override``, else $DECONVGAN_CACHE, else ~/.cache/deconvgan (not created here)."""
    if override is not None:
        return Path(override).expanduser()
    env = os.environ.get(CACHE_ENV)
    return Path(env).expanduser() if env else DEFAULT_CACHE_ROOT.expanduser()


def tensor_checksum(*tensors: torch.Tensor) -> str:
    """sha256 over the dtypes, shapes and raw bytes of ``tensors`` (CPU, contiguous copies if needed)."""
    digest = hashlib.sha256()
    for t in tensors:
        t = t.detach().cpu().contiguous()
        digest.update(f"{t.dtype}{tuple(t.shape)}".encode())
        digest.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return digest.hexdigest()


def cache_key(fields: dict[str, Any]) -> str:
    """A short stable hash of JSON-able ``fields`` (sorted keys), used in cache file names."""
    return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:16]


def safe_stem(text: str) -> str:
    """``text`` with every character outside ``A-Za-z0-9._-`` replaced by ``_``: usable as a file name."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", text)


@functools.cache
def _warn_once(message: str) -> None:
    # One warning per distinct message, remembered by functools.cache: a broken cache must not flood the log.
    # Tests forget what was warned with _warn_once.cache_clear() (an autouse fixture), so none depends on order.
    warnings.warn(message, CacheWarning, stacklevel=3)


@dataclass(frozen=True, eq=False)
class FeatureStats:
    """Features of the real images and their Gaussian moments."""

    features: torch.Tensor  # float32 [N, D]
    mu: torch.Tensor  # float64 [D]
    sigma: torch.Tensor  # float64 [D, D]
    key: str  # the cache key these were stored under


def _read(path: Path, meta_path: Path, fields: dict[str, Any]) -> FeatureStats | None:
    """The cached statistics, or None (after one warning) when the files are unusable."""
    if not path.is_file() or not meta_path.is_file():
        return None
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        with safe_open(str(path), framework="pt", device="cpu") as f:
            file_meta = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 - safe_open has no items()
        if meta.get("format") != STATS_FORMAT or meta.get("fields") != fields:
            raise ValueError("metadata does not match the requested key")
        if file_meta.get("key") != meta.get("key"):
            raise ValueError("tensor file and metadata belong to different entries")
        features, mu, sigma = tensors["features"], tensors["mu"], tensors["sigma"]
        n, d = features.shape
        if n != meta["num_samples"] or mu.shape != (d,) or sigma.shape != (d, d):
            raise ValueError("tensor shapes do not match the metadata")
        if not (features.isfinite().all() and mu.isfinite().all() and sigma.isfinite().all()):
            raise ValueError("non-finite values")
    except (OSError, ValueError, KeyError, TypeError, SafetensorError) as exc:
        _warn_once(f"{path}: unusable feature cache ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__}); "
                   "recomputing")
        return None
    return FeatureStats(features=features.float(), mu=mu.double(), sigma=sigma.double(), key=meta["key"])


def cached_feature_stats(
    images: torch.Tensor,
    extractor: Callable[[torch.Tensor], torch.Tensor],
    *,
    dataset: str,
    split: str,
    extractor_name: str,
    extractor_version: int | str,
    cache_dir: str | Path | None = None,
    use_cache: bool = True,
) -> FeatureStats:
    """Features and moments of the real ``images`` (uint8 [N, C, H, W]) under ``extractor``, cached.

    The key is (dataset, split, resolution, channels, extractor name and version, sample count,
    checksum of the images). ``cache_dir`` defaults to ``<cache root>/features``. ``use_cache=False``
    computes without reading or writing the cache.
    """
    fields = {
        "dataset": dataset, "split": split, "resolution": int(images.shape[-1]), "channels": int(images.shape[1]),
        "extractor": extractor_name, "extractor_version": extractor_version,
        "num_samples": int(images.shape[0]), "data_sha256": tensor_checksum(images),
    }
    key = cache_key(fields)
    folder = Path(cache_dir).expanduser() if cache_dir is not None else cache_root() / "features"
    stem = safe_stem(f"{dataset}-{split}-{fields['resolution']}px-{extractor_name}-n{fields['num_samples']}-{key}")
    path, meta_path = folder / f"{stem}.safetensors", folder / f"{stem}.json"
    if use_cache:
        found = _read(path, meta_path, fields)
        if found is not None:
            return found
    features = extractor(images).float().cpu().contiguous()  # [N, D]
    mu, sigma = feature_statistics(features)  # float64
    stats = FeatureStats(features=features, mu=mu, sigma=sigma, key=key)
    if use_cache:
        tensors = {"features": features, "mu": mu.contiguous(), "sigma": sigma.contiguous()}
        write_with(path, lambda tmp: save_file(tensors, str(tmp), metadata={"key": key}))
        meta = {"format": STATS_FORMAT, "format_version": STATS_FORMAT_VERSION, "package_version": __version__,
                "key": key, "fields": fields, "num_samples": fields["num_samples"],
                "feature_dim": int(features.shape[1])}
        # JSON last: an entry counts only once both files exist, and the key ties them together.
        write_text(meta_path, json.dumps(meta, indent=2) + "\n")
    return stats
