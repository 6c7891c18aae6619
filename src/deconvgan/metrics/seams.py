"""Seam score: does an image continue across its own edges when tiled?

Tile an image 2x2. Inside each copy, neighbouring pixels differ by the image's ordinary steps; at
the two seams of the tiling, the last column meets the first column and the last row meets the
first row. A tileable texture makes those seam steps look like any other step; an image cut from a
larger one (or generated with zero padding) shows a jump there. With ``x`` an image ``[C, H, W]``
(indices ``c, i, j``), the pixel pairs are:

* **seam pairs** (``C*H + C*W`` of them): ``(x[c, i, W-1], x[c, i, 0])`` for every row (the vertical
  seam, between the left and right copies) and ``(x[c, H-1, j], x[c, 0, j])`` for every column
  (the horizontal seam, between the top and bottom copies);
* **interior pairs** (``C*H*(W-1) + C*(H-1)*W``): ``(x[c, i, j], x[c, i, j+1])`` and
  ``(x[c, i, j], x[c, i+1, j])``, every horizontally or vertically adjacent pair inside the image.

With ``m_LR`` and ``m_TB`` the mean absolute difference over the interior left-right and top-bottom
pairs, the score is the seam's mean absolute difference over what it would be if every seam pair
were an ordinary interior pair of its own direction::

    seam_score(x) = sum |a - b| over the seam pairs  /  (C*H * m_LR + C*W * m_TB)

For a square image (``H = W``) this is exactly ``mean |a - b| over the seam pairs / mean |a - b|
over all interior pairs``. For other shapes the directions are matched: the plain pooled ratio
would weight left-right against top-bottom as ``H : W`` in the seams but as ``H*(W-1) : (H-1)*W``
inside, so a perfectly periodic anisotropic texture (wood grain, stripes) on a 2:1 image would not
score 1.

1.0 means the seam is indistinguishable from the inside; a visible seam scores well above 1 (random
128-px crops of the shared texture photographs score 1.3 to 6, median about 2.2; the whole
photographs, which tile, 0.7 to 1.4). Only ratios are compared, so the intensity scale does not
matter: uint8 0..255 and floats in [-1, 1] give the same score for the same picture (computed in float64, so
uint8 inputs cannot wrap around when subtracted). :func:`seam_ratios` gives the two directions
separately (left-right and top-bottom), each against the interior steps of its own direction,
like the "LR / TB" figures of the shared textures' SOURCES.md.

A constant image has no interior difference, and then no seam difference either (both are 0 only
if every adjacent pair is equal): it tiles perfectly, and its score is defined as 1.0. The same
holds per direction in :func:`seam_ratios` (e.g. horizontal stripes have no left-right steps).
"""

from __future__ import annotations

import torch
from torch import Tensor

from deconvgan.errors import DataError

MIN_SIDE = 3  # with 2 pixels a side, the seam pair and the only interior pair are the same two pixels


def _as_image(image: Tensor) -> Tensor:
    """Validate ``[C, H, W]`` (uint8 or float, finite) and return it as float64 on the CPU."""
    if not isinstance(image, Tensor) or image.dim() != 3:
        shape = tuple(image.shape) if isinstance(image, Tensor) else type(image).__name__
        raise DataError(f"seam score needs one image [C, H, W], got {shape}: index a batch as images[i]")
    _, h, w = image.shape
    if h < MIN_SIDE or w < MIN_SIDE or image.shape[0] == 0:
        raise DataError(f"seam score needs an image of at least {MIN_SIDE}x{MIN_SIDE} px with a channel, "
                        f"got {tuple(image.shape)}")
    if image.dtype == torch.bool or image.is_complex():
        raise DataError(f"seam score needs a uint8 or float image, got {image.dtype}")
    x = image.detach().cpu().to(torch.float64)  # float64 before any subtraction: uint8 would wrap around
    if not torch.isfinite(x).all():
        raise DataError("seam score: the image contains NaN or infinite values")
    return x


def _seam_sums(x: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Sums of |differences| of float64 ``[C, H, W]``: (seam LR, interior LR, seam TB, interior TB)."""
    seam_lr = (x[:, :, -1] - x[:, :, 0]).abs().sum()  # [C, H] pairs across the vertical seam
    inner_lr = (x[:, :, 1:] - x[:, :, :-1]).abs().sum()  # [C, H, W-1] horizontally adjacent pairs
    seam_tb = (x[:, -1, :] - x[:, 0, :]).abs().sum()  # [C, W] pairs across the horizontal seam
    inner_tb = (x[:, 1:, :] - x[:, :-1, :]).abs().sum()  # [C, H-1, W] vertically adjacent pairs
    return seam_lr, inner_lr, seam_tb, inner_tb


def _ratio(seam_sum: float, seam_count: int, inner_sum: float, inner_count: int) -> float:
    if inner_sum == 0:  # every adjacent pair equal -> every seam pair equal too: a perfect tile
        return 1.0
    return (seam_sum / seam_count) / (inner_sum / inner_count)


def seam_score(image: Tensor) -> float:
    """Mean |step| across the seams of a 2x2 tiling over the mean |step| inside (see the module doc).

    ``image``: one image ``[C, H, W]``, uint8 or float, ``H, W >= 3``. Returns 1.0 for a seam like
    the inside (and for a constant image), more for a visible seam. Both seams are pooled; each seam
    pair is compared with the interior steps of its own direction (for a square image: mean over the
    ``C*(H+W)`` seam pairs over the mean over all ``C*(H*(W-1) + (H-1)*W)`` interior pairs).
    Raises :class:`~deconvgan.errors.DataError` for other shapes or non-finite values.
    """
    x = _as_image(image)
    c, h, w = x.shape
    seam_lr, inner_lr, seam_tb, inner_tb = _seam_sums(x)
    # The seam sum if each of the C*H left-right and C*W top-bottom seam pairs stepped like the mean
    # interior pair of its own direction: C*H * m_LR + C*W * m_TB (the C's cancel).
    expected = inner_lr / (w - 1) + inner_tb / (h - 1)
    return _ratio(float(seam_lr + seam_tb), 1, float(expected), 1)


def seam_ratios(image: Tensor) -> tuple[float, float]:
    """The two seams separately: ``(left-right, top-bottom)``, each against its own direction's steps.

    Left-right: mean |x[:, :, W-1] - x[:, :, 0]| over mean |x[:, :, j+1] - x[:, :, j]|; top-bottom
    the same along rows. Per direction, so an anisotropic texture (wood grain) compares like with
    like; a direction without any step (stripes) gives 1.0. Same input rules as :func:`seam_score`.
    """
    x = _as_image(image)
    c, h, w = x.shape
    seam_lr, inner_lr, seam_tb, inner_tb = _seam_sums(x)
    return (_ratio(float(seam_lr), c * h, float(inner_lr), c * h * (w - 1)),
            _ratio(float(seam_tb), c * w, float(inner_tb), c * (h - 1) * w))
