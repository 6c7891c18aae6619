"""The phase schedule as data: which phase a step belongs to, and where each phase ends.

The design's two phases are ``adversarial`` (D and G alternate) and an optional generator-only
phase against the frozen discriminator. Any sequence of phases works; the loop only asks
``phase_at(step)``.
"""

from __future__ import annotations

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
