"""Differentiable augmentation of the discriminator's inputs: DiffAugment, and ADA's adaptive probability.

Small data lets D memorise the training set. DiffAugment (Zhao et al. 2020) transforms *every* image D
sees -- real, fake in the D step, fake in the G step -- with the same family of differentiable ops, so D
never sees an un-augmented image and G's gradients flow back through the ops. ADA (Karras et al. 2020)
applies each op to each image with a probability p, raised while D is over-confident on reals
(r_t = E[sign D(x)] above a target, 0.6) and lowered otherwise.

The ops, on images in [-1, 1] (DiffAugment's definitions; ``u`` is one U[0, 1) draw per image):

* ``color``: brightness ``x + (u - 0.5)``; saturation ``(x - m_c) * 2u + m_c`` with ``m_c`` the mean over
  channels (the identity on grayscale); contrast ``(x - m) * (u + 0.5) + m`` with ``m`` the image mean;
* ``translation``: an integer shift ``(dy, dx)``, each uniform in ``[-S, S]``, ``S = round(side * 1/8)``;
  pixels shifted in from outside are 0 (zero padding);
* ``cutout``: a square of ``round(side * 1/2)`` pixels set to 0, its centre uniform over the image
  (clipped at the borders).

Every draw comes from the step's ``torch.Generator`` and is made for the *global* batch, then sliced to
this rank's share, so a run is deterministic, resumes bit for bit and draws the same at any world size.
The number of draws does not depend on p (masks are drawn even at p = 1), so a change of p never shifts
the stream of later draws.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from deconvgan import distributed as dist
from deconvgan.config import AugmentConfig


def _uniform(gen: torch.Generator, total: int, share: slice, x: Tensor) -> Tensor:
    """One U[0, 1) draw per image of the global batch, this rank's share, as [n, 1, 1, 1]."""
    return torch.rand(total, device=x.device, generator=gen, dtype=x.dtype)[share].view(-1, 1, 1, 1)


def _integers(gen: torch.Generator, low: int, high: int, total: int, share: slice, device: torch.device) -> Tensor:
    """One integer in [low, high) per image of the global batch, this rank's share: [n]."""
    return torch.randint(low, high, (total,), device=device, generator=gen)[share]


def brightness(x: Tensor, u: Tensor) -> Tensor:
    """``x + (u - 0.5)``: ``u`` [n, 1, 1, 1] in [0, 1) shifts each image by U(-0.5, 0.5)."""
    return x + (u - 0.5)


def saturation(x: Tensor, u: Tensor) -> Tensor:
    """Scale each pixel's distance from its channel mean by ``2u`` (U(0, 2)); grayscale is unchanged."""
    mean = x.mean(dim=1, keepdim=True)  # [n, 1, H, W]
    return (x - mean) * (2 * u) + mean


def contrast(x: Tensor, u: Tensor) -> Tensor:
    """Scale each image's distance from its mean by ``u + 0.5`` (U(0.5, 1.5))."""
    mean = x.mean(dim=(1, 2, 3), keepdim=True)  # [n, 1, 1, 1]
    return (x - mean) * (u + 0.5) + mean


def translate(x: Tensor, dy: Tensor, dx: Tensor, pad: int | None = None) -> Tensor:
    """Shift image ``i`` down by ``dy[i]`` and right by ``dx[i]`` pixels (negative: up/left), zero-filled.

    ``out[i, :, y, x] = x[i, :, y - dy[i], x - dx[i]]`` where that is inside the image, else 0.
    A gather from a zero-padded copy, so the gradient flows to the pixels that moved. ``pad`` (at least
    the largest ``|dy|``, ``|dx|``; default: computed, which syncs a GPU) is the width of that padding.
    """
    n, _, h, w = x.shape
    if pad is None:
        pad = int(max(dy.abs().max().item(), dx.abs().max().item())) if n else 0
    padded = torch.nn.functional.pad(x, (pad, pad, pad, pad))  # [n, C, H + 2p, W + 2p]
    rows = torch.arange(h, device=x.device)[None, :] - dy[:, None] + pad  # [n, H]: source row in padded
    cols = torch.arange(w, device=x.device)[None, :] - dx[:, None] + pad  # [n, W]
    batch = torch.arange(n, device=x.device)[:, None, None]
    # advanced indices on dims 0, 2, 3 around a slice: the result is [n, H, W, C]
    return padded[batch, :, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2)


def cutout(x: Tensor, cy: Tensor, cx: Tensor, size: tuple[int, int]) -> Tensor:
    """Zero a ``size = (h, w)`` rectangle of image ``i`` whose rows are ``cy[i] - h // 2 .. + h - 1``
    (columns likewise with ``cx``), clipped to the image."""
    _, _, height, width = x.shape
    top, left = (cy - size[0] // 2)[:, None], (cx - size[1] // 2)[:, None]  # [n, 1]
    ys, xs = torch.arange(height, device=x.device)[None], torch.arange(width, device=x.device)[None]
    inside_y = (ys >= top) & (ys < top + size[0])  # [n, H]
    inside_x = (xs >= left) & (xs < left + size[1])  # [n, W]
    keep = ~(inside_y[:, :, None] & inside_x[:, None, :])  # [n, H, W]
    return x * keep[:, None].to(x.dtype)


def _where(mask: Tensor | None, augmented: Tensor, x: Tensor) -> Tensor:
    return augmented if mask is None else torch.where(mask.view(-1, 1, 1, 1), augmented, x)


def augment(x: Tensor, gen: torch.Generator, cfg: AugmentConfig, p: float = 1.0, *,
            total: int | None = None, share: slice | None = None) -> Tensor:
    """Apply ``cfg.policy`` to a batch ``x`` [n, C, H, W]; each op hits each image with probability ``p``.

    ``total`` and ``share``: the global batch size and this rank's slice of it (default: ``x`` is the
    whole batch). Differentiable in ``x``. With ``p = 0`` the result equals ``x``.
    """
    n, _, h, w = x.shape
    total = n if total is None else total
    share = slice(0, n) if share is None else share

    def mask() -> Tensor | None:  # drawn whatever p is, so the stream of draws does not depend on p
        drawn = torch.rand(total, device=x.device, generator=gen)[share] < p
        return None if p >= 1 else drawn

    for op in cfg.policy:
        if op == "color":
            for fn in (brightness, saturation, contrast):
                u, hit = _uniform(gen, total, share, x), mask()
                x = _where(hit, fn(x, u), x)
        elif op == "translation":
            sy, sx = int(h * cfg.translation + 0.5), int(w * cfg.translation + 0.5)
            dy = _integers(gen, -sy, sy + 1, total, share, x.device)
            dx = _integers(gen, -sx, sx + 1, total, share, x.device)
            x = _where(mask(), translate(x, dy, dx, pad=max(sy, sx)), x)
        elif op == "cutout":
            size = (int(h * cfg.cutout + 0.5), int(w * cfg.cutout + 0.5))
            # the centre ranges over the image (one more row/column for even sides, as DiffAugment)
            cy = _integers(gen, 0, h + 1 - size[0] % 2, total, share, x.device)
            cx = _integers(gen, 0, w + 1 - size[1] % 2, total, share, x.device)
            x = _where(mask(), cutout(x, cy, cx, size), x)
        else:  # pragma: no cover - AugmentConfig validates the policy
            raise ValueError(f"unknown augmentation op {op!r}")
    return x


class AdaptiveP:
    """ADA's augmentation probability p, steered by r_t = E[sign D(x_real)] toward ``cfg.ada_target``.

    Every generator step, :meth:`observe` is given D's logits on (augmented) reals; :meth:`step_done`
    adds that step's sign sum and count, averaged over ranks, to the accumulators, and every
    ``cfg.ada_interval`` steps moves p by ``sign(r_t - target) * images / (ada_kimg * 1000)``
    (``images`` seen since the last adjustment), clamped to [0, 1], and resets the accumulators.
    The whole state is three Python floats (:meth:`state_dict`), saved in the training state, so a
    resumed run adapts exactly as an uninterrupted one. With ``cfg.kind != "ada"`` p stays 1
    (DiffAugment: every op on every image) and nothing is accumulated.
    """

    def __init__(self, cfg: AugmentConfig, batch_size: int) -> None:
        self.cfg, self.batch_size = cfg, batch_size
        self.adaptive = cfg.kind == "ada"
        self.p = cfg.ada_p_init if self.adaptive else 1.0
        self.sign_sum, self.count = 0.0, 0.0  # global, since the last adjustment
        self._step: list[Tensor] = []  # this step's local sign sums (tensors: no device sync per D step)
        self._step_count = 0
        self.last_rt: float | None = None

    def observe(self, real_logits: Tensor) -> None:
        """Record D's logits on one batch of (augmented) real images."""
        if self.adaptive:
            self._step.append(torch.sign(real_logits.detach().float()).sum())
            self._step_count += real_logits.numel()

    def step_done(self, step: int, ranks: dist.DistInfo) -> None:
        """After generator step ``step`` (1-based count of steps done): accumulate, maybe adjust p."""
        if not self.adaptive:
            return
        if self._step:
            local = torch.stack([torch.stack(self._step).sum(),
                                 torch.tensor(float(self._step_count), device=self._step[0].device)])
            mean = dist.mean_across_ranks(ranks, local).double().cpu()  # mean over ranks of (sum, count)
            self.sign_sum += float(mean[0]) * ranks.world_size
            self.count += float(mean[1]) * ranks.world_size
            self._step, self._step_count = [], 0
        if step % self.cfg.ada_interval == 0 and self.count > 0:
            self.last_rt = self.sign_sum / self.count
            images = self.cfg.ada_interval * self.batch_size
            adjust = math.copysign(1.0, self.last_rt - self.cfg.ada_target) if self.last_rt != self.cfg.ada_target \
                else 0.0
            self.p = min(1.0, max(0.0, self.p + adjust * images / (self.cfg.ada_kimg * 1000)))
            self.sign_sum, self.count = 0.0, 0.0

    def state_dict(self) -> dict[str, float]:
        """``{"p", "sign_sum", "count"}``: all that resume needs (JSON floats round-trip exactly)."""
        return {"p": self.p, "sign_sum": self.sign_sum, "count": self.count}

    def load_state_dict(self, state: dict[str, float]) -> None:
        """Continue from :meth:`state_dict`'s output."""
        self.p, self.sign_sum, self.count = float(state["p"]), float(state["sign_sum"]), float(state["count"])
