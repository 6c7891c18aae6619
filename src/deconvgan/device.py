"""Device selection: CUDA when present, else the CPU; always overridable."""

from __future__ import annotations

import torch

from deconvgan.errors import ConfigError


def select_device(name: str = "auto") -> torch.device:
    """``auto`` picks ``cuda`` when a GPU is usable, else ``cpu``; ``cuda``/``cuda:N`` must exist."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"device {name!r} asked for, but no CUDA device is usable here: use cpu or auto")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ConfigError(f"device {name!r}: only {torch.cuda.device_count()} CUDA device(s) exist")
    return device
