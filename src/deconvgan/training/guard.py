"""The divergence guard: a run whose losses or weights went non-finite never writes another snapshot.

The loop asks :meth:`DivergenceGuard.check` at every logging interval and before every snapshot or
training state it writes; the check costs one host sync (one boolean per tensor, stacked), never one
per step. On the first non-finite value the guard names it (``step 120: loss_d is nan``) and, as
``train.on_divergence`` says, either stops the run with :class:`~deconvgan.errors.TrainingDiverged`
(``stop``, the default) or tells the loop to reload the last good training state with both learning
rates lowered by ``train.rollback_lr_factor`` (``rollback``, at most ``train.max_rollbacks`` times).
Because every state on disk passed the check before it was written, the last good one is intact.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch
from torch import nn

from deconvgan.config import ON_DIVERGENCE
from deconvgan.errors import TrainingDiverged


def first_nonfinite_value(values: Mapping[str, object]) -> str | None:
    """The first logged number that is NaN or infinite, as ``"loss_g is nan"``; None if all are finite.

    Non-numeric entries (phase names, counts) are skipped.
    """
    for name, value in values.items():
        if isinstance(value, float) and not math.isfinite(value):
            return f"{name} is {value}"
    return None


def first_nonfinite_tensor(modules: Mapping[str, nn.Module | None]) -> str | None:
    """The first floating-point parameter or buffer that holds a NaN or infinity, as
    ``"generator weight main.0.weight is not finite"``; None if every one is finite.

    One host sync for all of them: the per-tensor flags are computed on the device and read together.
    """
    named = [(what, key, t) for what, module in modules.items() if module is not None
             for key, t in module.state_dict().items() if t.is_floating_point()]
    if not named:
        return None
    flags = torch.stack([torch.isfinite(t).all() for _, _, t in named]).cpu()
    if bool(flags.all()):
        return None
    what, key, _ = named[int((~flags).nonzero()[0])]
    return f"{what} weight {key} is not finite"


class DivergenceGuard:
    """Finds non-finite losses and weights and decides what the loop does about them.

    ``modules`` maps a name used in messages (``generator``, ``discriminator``, ``generator average``)
    to the module; the modules are read at each check, so the guard follows their current weights.
    """

    def __init__(self, modules: Mapping[str, nn.Module | None], *, policy: str = "stop", max_rollbacks: int = 0,
                 lr_factor: float = 0.5, rollbacks_done: int = 0) -> None:
        if policy not in ON_DIVERGENCE:
            raise ValueError(f"on_divergence={policy!r} is not one of {', '.join(ON_DIVERGENCE)}")
        self.modules = dict(modules)
        self.policy, self.max_rollbacks, self.lr_factor = policy, max_rollbacks, lr_factor
        self.rollbacks_done = rollbacks_done  # carried in the training state, so a resumed run keeps its count
        self.lr_scale = 1.0  # the product of the rollbacks' factors: the rates are the configured ones times this

    def check(self, step: int, logged: Mapping[str, object] | None = None) -> str | None:
        """``"step 120: loss_d is nan"`` for the first non-finite logged value or weight, else None."""
        problem = (first_nonfinite_value(logged) if logged else None) or first_nonfinite_tensor(self.modules)
        return f"step {step}: {problem}" if problem is not None else None

    def on_divergence(self, problem: str, good_state_step: int | None) -> float:
        """Stop, or allow one more rollback to the state at ``good_state_step`` (None: there is none).

        Returns the new :attr:`lr_scale` (the configured rates' multiplier) after a rollback; raises
        :class:`~deconvgan.errors.TrainingDiverged` with a one-line message when the run must stop.
        """
        kept = (f"the last good training state (step {good_state_step}) and snapshot are kept"
                if good_state_step is not None else "no training state had been saved yet")
        if self.policy == "rollback" and good_state_step is not None and self.rollbacks_done < self.max_rollbacks:
            self.rollbacks_done += 1
            self.lr_scale *= self.lr_factor
            return self.lr_scale
        if self.policy == "rollback" and good_state_step is not None:
            raise TrainingDiverged(f"training diverged again at {problem} after {self.rollbacks_done} rollback(s); "
                                   f"{kept}: lower train.g_lr/train.d_lr or add loss.r1_gamma and resume")
        remedy = ("lower train.g_lr and train.d_lr (or add loss.r1_gamma), then resume with --resume RUN_DIR; "
                  "or set train.on_divergence=rollback")
        raise TrainingDiverged(f"training diverged at {problem}; {kept}: {remedy}")
