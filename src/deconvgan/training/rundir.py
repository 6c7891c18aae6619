"""Numbered run directories: ``runs/00003-mnist-dcgan/`` holds one run's config, log, stats,
samples, snapshots and training state (their file names: :mod:`deconvgan.runfiles`)."""

from __future__ import annotations

import re
from pathlib import Path

from deconvgan.errors import ConfigError
from deconvgan.runfiles import STATE_FILE

_NUMBERED = re.compile(r"^(\d{5})-")


def _numbered(runs_dir: Path) -> list[tuple[int, Path]]:
    if not runs_dir.is_dir():
        return []
    found = []
    for child in runs_dir.iterdir():
        match = _NUMBERED.match(child.name)
        if match and child.is_dir():
            found.append((int(match.group(1)), child))
    return sorted(found)


def new_run_dir(runs_dir: str | Path, name: str) -> Path:
    """Create ``runs_dir/NNNNN-name`` with the next free number."""
    runs_dir = Path(runs_dir)
    runs_dir.mkdir(parents=True, exist_ok=True)
    while True:
        existing = _numbered(runs_dir)
        number = existing[-1][0] + 1 if existing else 0
        path = runs_dir / f"{number:05d}-{name}"
        try:
            path.mkdir()  # fails if another process took the number first: try the next
            return path
        except FileExistsError:
            continue


def resolve_resume(resume: str, runs_dir: str | Path) -> Path:
    """``latest`` -> the newest run in ``runs_dir`` with a training state; else the given directory."""
    if resume == "latest":
        for _, path in reversed(_numbered(Path(runs_dir))):
            if (path / STATE_FILE).is_file():
                return path
        raise ConfigError(f"--resume latest: no run in {runs_dir}/ has a {STATE_FILE} yet")
    path = Path(resume)
    if not path.is_dir():
        raise ConfigError(f"--resume {resume}: no such run directory")
    if not (path / STATE_FILE).is_file():
        raise ConfigError(f"--resume {resume}: {path / STATE_FILE} is missing (the run never checkpointed)")
    return path
