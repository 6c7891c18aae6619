"""Fold inference-mode BatchNorm into the layer before it: same function, fewer ops.

In eval mode a BatchNorm is a fixed per-channel affine map ``y = s * x + t`` with
``s = gamma / sqrt(running_var + eps)`` and ``t = beta - s * running_mean``. When ``x`` is the output
of a linear layer (Linear, Conv2d, ConvTranspose2d) the map can be merged into that layer's weights
and bias (``W' = s W``, ``b' = s b + t``), removing a whole pass over the feature map. The result is
the eval-mode model up to float rounding (the fold itself is computed in float64).

The generators here put a BatchNorm after:

* ``Linear -> Unflatten(1, (C, H, W))``: output feature ``o`` lands in channel ``o // (H * W)``;
* an upsampling block whose last op is its ``.conv``: ``TransposedUpsample`` and ``ResizeConvUpsample``
  (one conv channel per output channel) and ``PixelShuffleUpsample`` (conv channel ``o`` becomes
  output channel ``o // scale^2``: the shuffle only moves pixels, so the fold commutes with it).

A :class:`~deconvgan.models.cbn.ConditionalBatchNorm2d` in one of these positions has its normalisation
(``.bn``, running statistics) folded the same way; its per-class scale and shift stay, picked per sample.

Any BatchNorm not in one of these positions is left in place, which is still correct, only slower.
"""

from __future__ import annotations

import copy
import math

import torch
from torch import nn
from torch.nn.utils import parametrize

from deconvgan.models.cbn import ConditionalBatchNorm2d
from deconvgan.models.upsample import PixelShuffleUpsample, ResizeConvUpsample, TransposedUpsample

_FOLDABLE = (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)


def fuse_for_inference(model: nn.Module) -> nn.Module:
    """An eval-mode copy of ``model`` with each foldable BatchNorm merged into the layer before it.

    Folded BatchNorms are replaced by ``nn.Identity`` (so layer names stay as they were). The copy
    computes the same function as ``model.eval()`` up to float error, and has ``requires_grad``
    off: it is for inference only. ``model`` itself is not modified.
    """
    fused = copy.deepcopy(model).eval()
    for sequential in [m for m in fused.modules() if isinstance(m, nn.Sequential)]:
        _fold_in_sequential(sequential)
    fused.requires_grad_(False)
    return fused


def count_batchnorms(model: nn.Module) -> int:
    """How many BatchNorm layers ``model`` still has (0 after a complete fold)."""
    return sum(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())


def _fold_in_sequential(seq: nn.Sequential) -> None:
    names = list(seq._modules)
    for i, name in enumerate(names):
        bn = seq._modules[name]
        conditional = isinstance(bn, ConditionalBatchNorm2d) and isinstance(bn.bn, nn.BatchNorm2d)
        if conditional:  # fold its normalisation; the class's scale and shift stay in the module
            bn = bn.bn
        if not isinstance(bn, (nn.BatchNorm1d, nn.BatchNorm2d)) or i == 0:
            continue
        if bn.running_mean is None or bn.running_var is None:
            continue  # no running statistics: it normalises with batch statistics even in eval mode
        target = _producer(seq, names, i, bn.num_features)
        if target is None:
            continue
        layer, repeat = target
        _fold(layer, bn, repeat)
        if conditional:
            seq._modules[name].bn = nn.Identity()
        else:
            seq._modules[name] = nn.Identity()


def _producer(seq: nn.Sequential, names: list[str], i: int, channels: int) -> tuple[nn.Module, int] | None:
    """``(layer, repeat)``: the linear layer producing BN ``i``'s input, and how many consecutive
    output features of it map to one BN channel; None when the BN cannot be folded."""
    prev = seq._modules[names[i - 1]]
    if isinstance(prev, nn.Unflatten) and i >= 2:
        linear = seq._modules[names[i - 2]]
        sizes = tuple(prev.unflattened_size)
        # Linear [N, C*H*W] -> Unflatten(1, (C, H, W)) -> BN over C: row o belongs to channel o // (H*W)
        if isinstance(linear, nn.Linear) and prev.dim == 1 and sizes[0] == channels:
            return _checked(linear, math.prod(sizes[1:]), channels)
        return None
    if isinstance(prev, (TransposedUpsample, ResizeConvUpsample)):
        return _checked(prev.conv, 1, channels)
    if isinstance(prev, PixelShuffleUpsample):
        # conv channel o -> output channel o // scale^2 (PixelShuffle's channel order)
        return _checked(prev.conv, prev.scale * prev.scale, channels)
    if isinstance(prev, _FOLDABLE):
        return _checked(prev, 1, channels)
    return None


def _checked(layer: nn.Module, repeat: int, channels: int) -> tuple[nn.Module, int] | None:
    if not isinstance(layer, _FOLDABLE) or parametrize.is_parametrized(layer):
        return None  # e.g. a spectral-norm weight is recomputed on every call: nothing to fold into
    if isinstance(layer, (nn.Conv2d, nn.ConvTranspose2d)) and layer.groups != 1:
        return None
    out_features = layer.weight.shape[1 if isinstance(layer, nn.ConvTranspose2d) else 0]
    if out_features != channels * repeat:
        return None
    return layer, repeat


@torch.no_grad()
def _fold(layer: nn.Module, bn: nn.modules.batchnorm._BatchNorm, repeat: int) -> None:
    """Merge ``bn`` (eval mode) into ``layer``'s weight and bias, in float64 then back."""
    weight = layer.weight
    dtype = weight.dtype
    var, mean = bn.running_var.double(), bn.running_mean.double()
    gamma = bn.weight.double() if bn.weight is not None else torch.ones_like(var)
    beta = bn.bias.double() if bn.bias is not None else torch.zeros_like(var)
    scale = gamma / torch.sqrt(var + bn.eps)  # [C]
    shift = beta - scale * mean  # [C]
    scale, shift = scale.repeat_interleave(repeat), shift.repeat_interleave(repeat)  # [out_features]
    # out_features is dim 0 of Linear [out, in] and Conv2d [out, in, kh, kw], dim 1 of ConvTranspose2d [in, out, kh, kw]
    out_dim = 1 if isinstance(layer, nn.ConvTranspose2d) else 0
    shape = [1] * weight.dim()
    shape[out_dim] = -1
    weight.copy_((weight.double() * scale.view(shape)).to(dtype))
    bias = layer.bias.double() if layer.bias is not None else torch.zeros_like(scale)
    new_bias = (scale * bias + shift).to(dtype=dtype, device=weight.device)
    if layer.bias is None:
        layer.bias = nn.Parameter(new_bias, requires_grad=False)  # the layer had none: BN's shift replaced it
    else:
        layer.bias.copy_(new_bias)
