"""Collapse warnings: the two failures that training statistics show before the samples do.

* **The discriminator wins outright**: mean D(x) above :data:`D_REAL_ABOVE` and mean D(G(z)) below
  :data:`D_FAKE_BELOW` at every logged interval for :data:`SUSTAIN_KIMG` thousand images. The
  generator then gets almost no gradient (the run with learning rates of 50 sat at D(x) = 1,
  D(G(z)) = 0 to the end).
* **The sample grid has collapsed**: the per-pixel standard deviation across the fixed-latent grid
  is below :data:`GRID_STD_BELOW` (of the 0..1 range): every latent draws nearly the same image.

Each is reported once per episode (it must end before it is reported again), as one ``warning``
line in log.txt and stats.jsonl with the remedy that fits. Warnings never stop a run.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

D_REAL_ABOVE = 0.99  # mean sigmoid(D(x)) over a logging interval
D_FAKE_BELOW = 0.01  # mean sigmoid(D(G(z))) over a logging interval
SUSTAIN_KIMG = 5.0  # how long D must keep winning before it is worth a warning
GRID_STD_BELOW = 0.02  # mean over pixels of the std across the grid's images, images scaled to 0..1

D_WINS_REMEDY = ("lower train.d_lr (or raise train.g_lr), add an R1 penalty (loss.r1_gamma=1), or augment what D "
                 "sees (augment.kind=ada)")
GRID_REMEDY = ("mode collapse: lower both learning rates, add loss.r1_gamma, or try model.d_mbstd=4 / model.d_pack=2 "
               "(see deconvgan evaluate --metrics prdc)")


class CollapseWatch:
    """Turns logged statistics and sample grids into at most one warning per collapse episode."""

    def __init__(self, batch_size: int) -> None:
        self.batch_size = batch_size
        self._winning_since: int | None = None  # first logged step of the current episode of D winning
        self._warned_wins = False
        self._warned_grid = False

    def observe(self, step: int, logged: Mapping[str, object]) -> str | None:
        """The warning for D winning outright, once per episode; None otherwise (or without D statistics)."""
        d_real, d_fake = logged.get("d_real"), logged.get("d_fake")
        if not isinstance(d_real, float) or not isinstance(d_fake, float):
            return None  # a generator-only interval: D did not judge reals
        if not (d_real > D_REAL_ABOVE and d_fake < D_FAKE_BELOW):
            self._winning_since, self._warned_wins = None, False  # the episode is over
            return None
        if self._winning_since is None:
            self._winning_since = step
        kimg = (step - self._winning_since) * self.batch_size / 1000
        if self._warned_wins or kimg < SUSTAIN_KIMG:
            return None
        self._warned_wins = True
        return (f"the discriminator has won outright since step {self._winning_since} ({kimg:g} kimg: mean D(x) "
                f"{d_real:.3f}, D(G(z)) {d_fake:.3f}); the generator learns little: {D_WINS_REMEDY}")

    def grid(self, step: int, images: torch.Tensor) -> str | None:
        """The warning for a collapsed fixed-latent grid (uint8 [N, C, H, W]), once per episode."""
        if step == 0 or images.shape[0] < 2:
            return None  # an untrained generator says nothing about collapse
        spread = float((images.float() / 255).std(dim=0).mean())
        if spread >= GRID_STD_BELOW:
            self._warned_grid = False
            return None
        if self._warned_grid:
            return None
        self._warned_grid = True
        return (f"the sample grid of step {step} has collapsed (per-pixel std across its {images.shape[0]} images "
                f"{spread:.4f} < {GRID_STD_BELOW}): {GRID_REMEDY}")
