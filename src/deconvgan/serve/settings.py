"""Every option of ``deconvgan serve`` in one frozen dataclass, validated on creation.

A bad value raises :class:`~deconvgan.errors.ConfigError` with one line naming the option, the value
and the fix, before any model is loaded or any port is bound.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

from deconvgan.errors import ConfigError
from deconvgan.runfiles import SNAPSHOT_FILE, SNAPSHOTS_DIR

BACKENDS = ("auto", "onnx", "torch")
# A model name appears in URLs: letters, digits, '.', '_' and '-', not starting with a dot (no '..', no '/').
MODEL_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,63}")
MAX_BATCH = 4096  # images per generator call; more is a typo (and memory)
MAX_DELAY_MS = 1000.0


def _check_int(name: str, value: object, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ConfigError(f"{name}={value!r} must be an integer in [{low}, {high}]")


def _check_float(name: str, value: object, low: float, high: float, *, low_open: bool = False) -> None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or value < low or (low_open and value == low) or value > high:
        left = "(" if low_open else "["
        raise ConfigError(f"{name}={value!r} must be a finite number in {left}{low:g}, {high:g}]")


@dataclass(frozen=True)
class ServeSettings:
    """Options of the HTTP server; see ``deconvgan serve --help`` for the same in flags.

    ``snapshots`` maps each model's name (used in URLs) to a snapshot file or run directory (its latest
    ``snapshot.safetensors``, as ``deconvgan sample RUN`` resolves it).
    """

    snapshots: Mapping[str, Path]
    host: str = "127.0.0.1"
    port: int = 8000
    backend: str = "auto"  # auto: ONNX Runtime where installed and the model exports, else eager PyTorch
    max_batch: int = 64  # images per generator call when concurrent requests are merged
    max_delay_ms: float = 5.0  # how long a batch may wait for more requests while the server is busy
    token_env: str | None = None  # environment variable holding the bearer token (None: no token)
    token: str | None = field(default=None, repr=False)  # the token itself (read from token_env by the command)
    cors_origins: tuple[str, ...] = ()  # allowed browser origins; empty: CORS off
    max_images_per_request: int = 256
    max_frames: int = 120  # frames of one interpolation, all steps together
    max_body_bytes: int = 4_000_000  # JSON bodies (explicit latents are the largest: 256 x 512 floats ~ 3 MB)
    max_pending: int = 1024  # requests queued or running per model; more get 429
    request_timeout_s: float = 30.0  # a request not answered in this time gets 503
    threads: int | None = None  # torch / ONNX Runtime CPU threads (None: their defaults)
    directions: int = 8  # GANSpace latent directions per image model (0: none)
    direction_samples: int = 2048  # latents sampled to find them

    def __post_init__(self) -> None:
        if not self.snapshots:
            raise ConfigError("no snapshot to serve: give a snapshot file or run directory (NAME=PATH to name it)")
        # a read-only copy with Path values (the dataclass is frozen: set through its __dict__)
        self.__dict__.update(snapshots=MappingProxyType({k: Path(v) for k, v in self.snapshots.items()}))
        for name in self.snapshots:
            if not isinstance(name, str) or not MODEL_NAME.fullmatch(name):
                raise ConfigError(f"model name {name!r} must be 1-64 letters, digits, '.', '_' or '-' (not starting "
                                  "with '.' or '-'): name it with NAME=PATH")
        if not self.host or any(c.isspace() for c in self.host):
            raise ConfigError(f"--host {self.host!r} must be an address such as 127.0.0.1 or 0.0.0.0")
        _check_int("--port", self.port, 0, 65535)
        if self.backend not in BACKENDS:
            raise ConfigError(f"--backend {self.backend!r} is not one of {', '.join(BACKENDS)}")
        _check_int("--max-batch", self.max_batch, 1, MAX_BATCH)
        _check_float("--max-delay-ms", self.max_delay_ms, 0.0, MAX_DELAY_MS)
        if self.token_env is not None and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", self.token_env):
            raise ConfigError(f"--token-env {self.token_env!r} must be an environment variable name like "
                              "DECONVGAN_TOKEN")
        if self.token is not None and (len(self.token) < 8 or any(c.isspace() for c in self.token)):
            raise ConfigError(f"the token in ${self.token_env or 'token'} must be at least 8 characters without "
                              "spaces: use e.g. `openssl rand -hex 16`")
        object.__setattr__(self, "cors_origins", tuple(self.cors_origins))
        for origin in self.cors_origins:
            if origin != "*" and not re.fullmatch(r"https?://[^/\s]+", origin):
                raise ConfigError(f"--cors-origin {origin!r} must look like https://example.org (scheme and host, "
                                  "no path) or *")
        _check_int("--max-images", self.max_images_per_request, 1, 100_000)
        _check_int("--max-frames", self.max_frames, 2, 10_000)
        _check_int("--max-body-bytes", self.max_body_bytes, 1024, 1 << 30)
        _check_int("--max-pending", self.max_pending, 1, 1_000_000)
        _check_float("--timeout-s", self.request_timeout_s, 0.0, 86_400.0, low_open=True)
        if self.threads is not None:
            _check_int("--threads", self.threads, 1, 1024)
        _check_int("--directions", self.directions, 0, 64)
        _check_int("--direction-samples", self.direction_samples, 16, 1_000_000)

    @property
    def max_delay_s(self) -> float:
        """:attr:`max_delay_ms` in seconds."""
        return self.max_delay_ms / 1000.0


def snapshot_name(path: Path) -> str:
    """The default URL name of a snapshot: its run directory's name (``runs/00003-digits`` -> ``00003-digits``),
    or the file's stem for a snapshot outside a run (``g.safetensors`` -> ``g``)."""
    path = Path(path)
    if path.is_dir():
        return path.resolve().name
    if path.name == SNAPSHOT_FILE or path.parent.name == SNAPSHOTS_DIR:  # inside a run: name the run
        run = path.parent if path.parent.name != SNAPSHOTS_DIR else path.parent.parent
        return run.resolve().name + ("" if path.name == SNAPSHOT_FILE else "-" + path.stem)
    return path.stem


def parse_snapshot_args(values: list[str]) -> dict[str, Path]:
    """``["digits=runs/00001-digits", "runs/00002-texture"]`` -> ``{name: path}``; one-line errors for
    repeated names (name them with NAME=PATH)."""
    snapshots: dict[str, Path] = {}
    for value in values:
        name, sep, path = value.partition("=")
        if not sep or not MODEL_NAME.fullmatch(name):  # a path that contains '=' but no valid name before it
            name, path = "", value
        path_obj = Path(path).expanduser()
        name = name or snapshot_name(path_obj)
        if name in snapshots:
            raise ConfigError(f"two snapshots are named {name!r}: name them apart with NAME=PATH")
        snapshots[name] = path_obj
    return snapshots
