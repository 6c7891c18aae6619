"""Runs a sweep's rows: ``deconvgan train`` then ``deconvgan evaluate``, ``jobs`` rows at a time.

Each row is trained exactly as a user trains (a ``python -m deconvgan train`` process with
``--runs-dir <row folder>``, so the run is ``<row>/00000-<name>/``), then its final snapshot (never
the best one) is scored by a ``python -m deconvgan evaluate --json`` process, and ``result.json``
is written atomically. The cores are divided between the jobs: each child gets
``--threads max(1, cores // jobs)`` (and ``OMP_NUM_THREADS``), so J runs do not oversubscribe them.

Resuming is by what the row folder holds: ``result.json`` -> finished, skipped; a run with a
training state -> ``train --resume`` (a run that had finished training only closes), then evaluated;
a run that stopped before its first training state -> removed and started again (it held nothing
to continue from). A diverged run (exit status 3) is a finished row with ``"status": "diverged"``.

Children run in their own sessions, so a Ctrl-C or SIGTERM reaches this process alone, which passes
it on to each running child exactly once: they save their training state at the end of the step
and exit; no new row starts; the sweep returns 128 + the signal's number. A second Ctrl-C is passed
on too (the children then stop at once, keeping their last saved state).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deconvgan.atomic import write_text
from deconvgan.config import Config
from deconvgan.configio import from_dict, read_yaml
from deconvgan.errors import DIVERGED_EXIT_STATUS, ConfigError
from deconvgan.runfiles import CONFIG_FILE, STATE_FILE, STATS_FILE
from deconvgan.sweep.cost import model_cost, read_stats, training_speed
from deconvgan.sweep.grid import Row
from deconvgan.sweep.plan import SweepPlan

ROW_RESULT = "result.json"  # a finished row: its metrics, cost and speed
ROW_EVALUATION = "evaluation.json"  # what `deconvgan evaluate --json` wrote
ROW_LOG = "row.log"  # the children's output, appended session after session
LOCK_FILE = ".lock"  # held while a sweep runs in the folder: two at once would train the same rows
INTERRUPTED = {128 + s for s in (signal.SIGINT, signal.SIGTERM, signal.SIGUSR1)}


def available_cores() -> int:
    """The CPU cores this process may run on (its affinity mask where the OS has one)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def threads_per_job(jobs: int, cores: int | None = None) -> int:
    """Torch threads of each of ``jobs`` concurrent children: the cores divided between them, at least 1."""
    return max(1, (cores or available_cores()) // jobs)


def row_run_dir(row_dir: Path) -> Path | None:
    """The training run inside a row folder (the newest numbered one), or None."""
    found = sorted(p for p in row_dir.glob("[0-9][0-9][0-9][0-9][0-9]-*") if p.is_dir())
    return found[-1] if found else None


def row_status(row_dir: Path) -> str:
    """``done``, ``partial`` (a training state to resume from) or ``todo``."""
    if (row_dir / ROW_RESULT).is_file():
        return "done"
    run_dir = row_run_dir(row_dir) if row_dir.is_dir() else None
    return "partial" if run_dir is not None and (run_dir / STATE_FILE).is_file() else "todo"


@dataclass(frozen=True)
class RowOutcome:
    """How one row ended in this session: done, skipped, diverged, interrupted or failed (with why)."""

    row: Row
    status: str
    detail: str = ""


@contextlib.contextmanager
def sweep_lock(sweep_dir: Path) -> Iterator[None]:
    """Hold ``sweep_dir/.lock`` (ConfigError if another sweep process holds it)."""
    try:
        import fcntl
    except ImportError:  # no advisory locks on this OS: trust the user to run one sweep per folder
        yield
        return
    with open(sweep_dir / LOCK_FILE, "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise ConfigError(f"{sweep_dir}: another deconvgan sweep is running there: wait for it or stop it") \
                from None
        yield


class SweepRunner:
    """Runs the rows of ``plan`` in ``sweep_dir`` with ``jobs`` children at a time (see the module doc)."""

    def __init__(self, plan: SweepPlan, sweep_dir: Path, jobs: int, log: Callable[[str], None] = print) -> None:
        self.plan, self.sweep_dir, self.jobs = plan, sweep_dir, jobs
        self.threads = threads_per_job(jobs)
        self._log = log
        self._stop = threading.Event()
        self._signal: int | None = None
        self._children: set[subprocess.Popen] = set()
        self._lock = threading.Lock()

    def log(self, message: str) -> None:
        self._log(f"[{time.strftime('%H:%M:%S')}] {message}")

    def run(self, rows: list[Row]) -> list[RowOutcome]:
        """Run (or skip) every row; returns their outcomes in row order."""
        pending = [r for r in rows if row_status(self.sweep_dir / r.name) != "done"]
        self.log(f"{len(rows) - len(pending)} of {len(rows)} rows already finished; running {len(pending)} with "
                 f"{self.jobs} job(s) x {self.threads} thread(s)")
        with self._signals_forwarded(), ThreadPoolExecutor(max_workers=self.jobs) as pool:
            futures = {r.name: pool.submit(self._guarded, r, i, len(rows)) for i, r in enumerate(rows) if r in pending}
            # wait() in small steps: a signal handler can only run between them on the main thread
            while not all(f.done() for f in futures.values()):
                time.sleep(0.2)
        done = {name: f.result() for name, f in futures.items()}
        return [done.get(r.name, RowOutcome(r, "skipped")) for r in rows]

    @property
    def stop_signal(self) -> int | None:
        """The signal that stopped the sweep, if one did."""
        return self._signal

    # --- one row --------------------------------------------------------------------------------------

    def _guarded(self, row: Row, index: int, total: int) -> RowOutcome:
        try:
            return self._run_row(row, f"row {index + 1}/{total} {row.name}")
        except Exception as exc:  # one broken row must not take the others down
            return RowOutcome(row, "failed", f"{type(exc).__name__}: {exc}")

    def _run_row(self, row: Row, label: str) -> RowOutcome:
        if self._stop.is_set():
            return RowOutcome(row, "interrupted", "not started")
        row_dir = self.sweep_dir / row.name
        row_dir.mkdir(parents=True, exist_ok=True)
        run_dir = row_run_dir(row_dir)
        if run_dir is not None and (run_dir / STATE_FILE).is_file():
            self.log(f"{label}: resuming {run_dir.name}")
            train = ["train", "--resume", str(run_dir), "--no-progress", "--threads", str(self.threads)]
            if self.plan.data_root is not None:
                train += ["--data-root", self.plan.data_root]
        else:
            if run_dir is not None:  # stopped before its first training state: nothing to continue from
                shutil.rmtree(run_dir)
            self.log(f"{label}: training")
            train = ["train", *self.plan.train_args(row, row_dir, self.threads)]
        status = self._child(train, row_dir)
        if status == DIVERGED_EXIT_STATUS:
            self.log(f"{label}: diverged (the divergence guard stopped it)")
            return self._finish(row, row_dir, {"status": "diverged", "metrics": {}}, 0.0)
        if status in INTERRUPTED or self._stop.is_set():
            return RowOutcome(row, "interrupted", f"training stopped (exit status {status})")
        if status != 0:
            return RowOutcome(row, "failed", f"training exited with status {status}: {_last_line(row_dir)}")
        run_dir = row_run_dir(row_dir)
        assert run_dir is not None  # train succeeded, so it made its run directory
        self.log(f"{label}: evaluating {','.join(self.plan.metrics)}")
        report = row_dir / ROW_EVALUATION
        evaluate = ["evaluate", str(run_dir), "--metrics", ",".join(self.plan.metrics), "--json", str(report),
                    "--num-generated", str(self.plan.eval_images), "--num-real", str(self.plan.eval_images),
                    "--threads", str(self.threads), "--no-progress"]
        if self.plan.data_root is not None:
            evaluate += ["--data-root", self.plan.data_root]
        start = time.perf_counter()
        status = self._child(evaluate, row_dir)
        if status in INTERRUPTED or self._stop.is_set():
            return RowOutcome(row, "interrupted", "evaluation stopped")
        if status != 0:
            return RowOutcome(row, "failed", f"evaluation exited with status {status}: {_last_line(row_dir)}")
        metrics = json.loads(report.read_text(encoding="utf-8"))["metrics"]
        outcome = self._finish(row, row_dir, {"status": "done", "metrics": metrics}, time.perf_counter() - start)
        shown = ", ".join(f"{k} {v:.4g}" for k, v in list(metrics.items())[:3])
        self.log(f"{label}: done: {shown}")
        return outcome

    def _finish(self, row: Row, row_dir: Path, outcome: dict[str, Any], eval_wall_s: float) -> RowOutcome:
        run_dir = row_run_dir(row_dir)
        assert run_dir is not None
        cfg: Config = from_dict(Config, read_yaml(run_dir / CONFIG_FILE))
        result = {
            "row": row.name, "combination": row.combination, "settings": dict(row.settings), "seed": row.seed,
            "status": outcome["status"], "run_dir": run_dir.relative_to(self.sweep_dir).as_posix(),
            **training_speed(read_stats(run_dir / STATS_FILE)), "eval_wall_s": round(eval_wall_s, 1),
            **model_cost(cfg.model), "threads": self.threads, "metrics": outcome["metrics"],
        }
        write_text(row_dir / ROW_RESULT, json.dumps(result, indent=2) + "\n")
        return RowOutcome(row, outcome["status"])

    def _child(self, args: list[str], row_dir: Path) -> int:
        """Run ``python -m deconvgan ARGS`` with its output appended to the row's log; its exit status."""
        env = dict(os.environ, OMP_NUM_THREADS=str(self.threads),
                   OMP_WAIT_POLICY=os.environ.get("OMP_WAIT_POLICY", "PASSIVE"))  # idle threads must not spin
        with open(row_dir / ROW_LOG, "a", encoding="utf-8") as out:
            out.write(f"$ deconvgan {' '.join(args)}\n")
            out.flush()
            with self._lock:
                if self._stop.is_set():
                    return 128 + (self._signal or signal.SIGINT)
                child = subprocess.Popen([sys.executable, "-m", "deconvgan", *args], stdout=out,
                                         stderr=subprocess.STDOUT, env=env, start_new_session=True)
                self._children.add(child)
            try:
                return child.wait()
            finally:
                with self._lock:
                    self._children.discard(child)

    # --- signals --------------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _signals_forwarded(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():  # handlers can only be set there
            yield
            return
        previous = {s: signal.signal(s, self._on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)

    def _on_signal(self, signum: int, frame: object) -> None:
        first = self._signal is None
        self._signal = self._signal or signum
        self._stop.set()
        with self._lock:
            children = list(self._children)
        for child in children:
            with contextlib.suppress(ProcessLookupError):
                child.send_signal(signum)
        if first:
            self._log(f"{signal.Signals(signum).name}: the running rows save their training state and stop; "
                      f"continue with  deconvgan sweep --resume {self.sweep_dir}")


def _last_line(row_dir: Path) -> str:
    lines = [line for line in (row_dir / ROW_LOG).read_text(encoding="utf-8").splitlines() if line.strip()]
    return lines[-1].strip() if lines else "(no output)"
