"""The names of everything a run directory holds: the one definition, imported by every reader and writer.

A run directory (``runs/00003-mnist-dcgan/``) is written by the training loop and read by the CLI
(``info``, ``--resume``), the snapshot loader, the evaluator and the benchmarks. This module sits at
the bottom of the import graph (it imports nothing) so all of them can share these names.
"""

from __future__ import annotations

DEFAULT_RUNS_DIR = "runs"  # where numbered run directories are created unless run.runs_dir / --runs-dir says otherwise

CONFIG_FILE = "config.yaml"  # the resolved config of the run
STATE_FILE = "training-state.safetensors"  # everything --resume needs
SNAPSHOT_FILE = "snapshot.safetensors"  # the latest snapshot (generator + model config)
BEST_SNAPSHOT_FILE = "snapshot-best.safetensors"  # the best snapshot by run.metric
BEST_FILE = "best.json"  # which step BEST_SNAPSHOT_FILE is and its metric value
STATS_FILE = "stats.jsonl"  # one JSON line per logging interval or evaluation
LOG_FILE = "log.txt"  # timestamped messages
TENSORBOARD_DIR = "tensorboard"  # TensorBoard events, when tensorboard is installed
SAMPLES_DIR = "samples"  # sample grids and their animation
SNAPSHOTS_DIR = "snapshots"  # one snapshot per snapshot interval
PROGRESS_GIF = "progress.gif"  # the sample grids as an animation, in SAMPLES_DIR
GRID_GLOB = "grid-*.png"  # matches every grid_name()
REALS_GRID = "reals.png"  # in SAMPLES_DIR: training images as the loop sees them, written when a run starts


def grid_name(step: int) -> str:
    """File name (in :data:`SAMPLES_DIR`) of the sample grid drawn after generator step ``step``."""
    return f"grid-{step:07d}.png"


STEP_SNAPSHOT_GLOB = "step-*.safetensors"  # matches every step_snapshot_name(); they sort by step


def step_snapshot_name(step: int) -> str:
    """File name (in :data:`SNAPSHOTS_DIR`) of the snapshot saved after generator step ``step``."""
    return f"step-{step:07d}.safetensors"
