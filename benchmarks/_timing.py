"""Shared by the speed benchmarks: one throughput statistic, and how busy the rest of the host was.

- :func:`interval_images_per_s`: images over the total time of a run's logged intervals, the
  statistic every speed table uses (what a user gets; a median of steps would drop the slow ones).
- :class:`HostNoise`: over a ``with`` block, the CPU time the host spent on processes other than
  this one and its children, and the hypervisor's steal time (Linux /proc/stat), for the
  conditions line printed under a table. Timing on a shared machine is only as good as its
  neighbours are quiet.
"""

from __future__ import annotations

import json
import os
import resource
import time
from pathlib import Path


def interval_images_per_s(stats_path: Path, batch: int, skip_first: bool = True) -> float:
    """Images / total seconds of the logging intervals in the stats.jsonl of a run started at step 0.

    Each line holds the step it ends at and that interval's images/s (grids, snapshots and
    evaluations are kept off that clock by the training loop); ``skip_first`` leaves out the first
    interval (warm-up).
    """
    records = [json.loads(line) for line in stats_path.read_text().splitlines()]
    records = [r for r in records if "images_per_s" in r]
    images = seconds = 0.0
    previous = 0
    for i, record in enumerate(records):
        n = (record["step"] - previous) * batch
        previous = record["step"]
        if i or not skip_first:
            images, seconds = images + n, seconds + n / record["images_per_s"]
    return images / seconds


def host_cpu_seconds() -> tuple[float, float] | None:
    """(busy, steal) CPU-seconds of the whole host since boot, from Linux's /proc/stat; None elsewhere.

    busy: user + nice + system + irq + softirq (guest time is already inside user); steal: time the
    hypervisor ran someone else on our vCPUs, which slows every timed call as much as a neighbour does.
    """
    try:
        user, nice, system, _idle, _iowait, irq, softirq, steal = (
            int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:9])
    except (OSError, ValueError):
        return None
    tick = os.sysconf("SC_CLK_TCK")
    return (user + nice + system + irq + softirq) / tick, steal / tick


def own_cpu_seconds() -> float:
    """CPU seconds of this process and of the children it has waited for."""
    return sum(getattr(resource.getrusage(who), f) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
               for f in ("ru_utime", "ru_stime"))


class HostNoise:
    """``with HostNoise() as noise: ...`` then ``noise.describe()``: the others' CPU use during the block."""

    def __enter__(self) -> HostNoise:
        self._host, self._own, self._start = host_cpu_seconds(), own_cpu_seconds(), time.perf_counter()
        self._load = os.getloadavg()[0]
        return self

    def __exit__(self, *exc: object) -> None:
        elapsed = max(time.perf_counter() - self._start, 1e-9)
        host, own = host_cpu_seconds(), own_cpu_seconds() - self._own
        self.seconds = elapsed
        self.others = self.steal = None
        if self._host is not None and host is not None:
            self.others = max(host[0] - self._host[0] - own, 0.0) / elapsed
            self.steal = (host[1] - self._host[1]) / elapsed
        self.load = (self._load, os.getloadavg()[0])

    def describe(self) -> str:
        load = f"load average (1 min) {self.load[0]:.1f} before, {self.load[1]:.1f} after"
        if self.others is None:
            return f"{self.seconds / 60:.1f} min; {load}; other processes' CPU use unknown (no /proc/stat)"
        return (f"{self.seconds / 60:.1f} min; other processes used {self.others:.2f} of the "
                f"{os.cpu_count()} CPUs on average, hypervisor steal {self.steal:.2f} CPUs; {load}")
