"""Stop requests by signal: SIGTERM and SIGUSR1 (cluster preemption, e.g. SLURM) and SIGINT (Ctrl-C).

While a :class:`StopSignals` block is active, the first of these signals only records a request; the
training loop asks :meth:`StopSignals.requested` at the end of each step, saves the training state
there and returns, so the saved state is always one of a whole step (a resume continues bit for bit).
A second Ctrl-C raises ``KeyboardInterrupt`` at once, for a user who does not want to wait.
Under torchrun every rank must stop at the same step (a rank that saved or stopped alone would leave
the others waiting in a collective): :meth:`requested` takes the maximum of the ranks' requests, one
tiny all-reduce per step, so a signal delivered to any rank stops them all at the same step.

Handlers can be installed only from the main thread; elsewhere the block does nothing.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType, TracebackType

import torch

from deconvgan import distributed as dist

STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGUSR1") if hasattr(signal, name))


def exit_status(signum: int) -> int:
    """The documented exit status of a run stopped by ``signum``: 128 + its number (SIGINT 130, SIGTERM 143,
    SIGUSR1 138), what a shell reports for a process the signal killed."""
    return 128 + signum


class StopSignals:
    """Records the first stop signal while the block runs; restores the previous handlers on exit."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self._previous: dict[int, object] = {}

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is threading.main_thread():
            for signum in STOP_SIGNALS:
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.signum is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt  # the second Ctrl-C: stop now, without waiting for the step to end
        if self.signum is None:
            self.signum = signum

    @property
    def name(self) -> str | None:
        """``"SIGTERM"`` etc. for the recorded signal, None when there is none."""
        return signal.Signals(self.signum).name if self.signum is not None else None

    def requested(self, ranks: dist.DistInfo, device: torch.device | None = None) -> bool:
        """True when this process, or under torchrun any rank, has received a stop signal.

        Every rank must call it at the same step when the run has several processes; each then adopts
        the signal some rank received, so all of them stop (and report) alike.
        """
        if ranks.enabled:
            flag = torch.tensor([self.signum or 0], dtype=torch.int64, device=device)
            torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MAX)
            if self.signum is None and int(flag.item()):
                self.signum = int(flag.item())
        return self.signum is not None
