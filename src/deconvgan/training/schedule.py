"""The phase schedule as data: which phase a step belongs to, and where each phase ends.

The learning rates follow the same step count (``lr_factor``), so a resumed run continues the schedule
exactly.

The design's two phases are ``adversarial`` (D and G alternate) and an optional generator-only
phase against the frozen discriminator. Any sequence of phases works; the loop only asks
``phase_at(step)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from deconvgan.config import PhaseConfig, TrainConfig


@dataclass(frozen=True)
class ScheduledPhase:
    """A phase with its step range ``[start, end)``."""

    phase: PhaseConfig
    start: int
    end: int


class Schedule:
    """Phases laid end to end in generator steps."""

    def __init__(self, train_cfg: TrainConfig) -> None:
        self.phases: list[ScheduledPhase] = []
        start = 0
        for phase in train_cfg.phases:
            end = start + phase.num_steps(train_cfg.batch_size)
            self.phases.append(ScheduledPhase(phase, start, end))
            start = end
        self.total_steps = start
        self.d_steps = train_cfg.d_steps
        self.lr_decay = train_cfg.lr_decay
        self.lr_decay_start = train_cfg.lr_decay_start
        self.lr_final_scale = train_cfg.lr_final_scale

    def phase_at(self, step: int) -> ScheduledPhase:
        """The phase that step ``step`` (0-based) belongs to."""
        for scheduled in self.phases:
            if scheduled.start <= step < scheduled.end:
                return scheduled
        raise IndexError(f"step {step} is past the schedule's {self.total_steps} steps")

    def real_batches_before(self, step: int) -> int:
        """Real batches the discriminator has drawn before ``step``: the data cursor, derived."""
        total = 0
        for scheduled in self.phases:
            if scheduled.phase.train_d:
                total += self.d_steps * max(0, min(step, scheduled.end) - scheduled.start)
        return total

    def lr_factor(self, step: int) -> float:
        """The learning rates' multiplier at ``step`` (0-based): 1 until ``lr_decay_start`` of the run, then
        falling (linearly or along a half cosine) to ``lr_final_scale`` at the last step."""
        if self.lr_decay == "none":
            return 1.0
        first = math.floor(self.lr_decay_start * self.total_steps)  # the last step at the full rates
        span = self.total_steps - 1 - first
        if step <= first or span <= 0:
            return 1.0
        done = min(1.0, (step - first) / span)  # 0 at the decay's start, 1 at the last step
        falling = 1.0 - done if self.lr_decay == "linear" else 0.5 * (1.0 + math.cos(math.pi * done))
        return self.lr_final_scale + (1.0 - self.lr_final_scale) * falling
