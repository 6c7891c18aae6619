"""``deconvgan serve``: the subcommand's arguments and its run function.

Imports nothing heavy at module level (the command line must start fast, and work without the serve
extra until this command is used): FastAPI and uvicorn are imported inside :func:`run`.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import sys

from deconvgan.cliargs import bounded, positive_int
from deconvgan.errors import ConfigError

MISSING_EXTRA = "deconvgan serve needs the serve extra: pip install 'deconvgan[serve]'"


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add ``serve`` to the ``deconvgan`` subcommands; its ``func`` is :func:`run`."""
    p = subparsers.add_parser("serve", help="serve snapshots over HTTP: an API and a web page to explore them")
    p.add_argument("models", nargs="+", metavar="SNAPSHOT", help="snapshot files or run directories; NAME=PATH "
                   "names a model in URLs (default: the run directory's name)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=bounded(int, 0, 65535), default=8000)
    p.add_argument("--backend", choices=("auto", "onnx", "torch"), default="auto",
                   help="auto: ONNX Runtime when installed and the model exports, else PyTorch")
    p.add_argument("--max-batch", type=bounded(int, 1, 4096), default=64,
                   help="images per generator call when concurrent requests are merged (default 64)")
    p.add_argument("--max-delay-ms", type=bounded(float, 0, 1000), default=5.0,
                   help="how long a batch may wait for more requests while the server is busy (default 5)")
    p.add_argument("--token-env", metavar="VAR", help="require `Authorization: Bearer $VAR` on every route but "
                   "/healthz, /readyz and the page's static files (open it as /#token=...)")
    p.add_argument("--cors-origin", action="append", default=[], metavar="ORIGIN",
                   help="allow browser pages from this origin (repeatable; default: CORS off)")
    p.add_argument("--max-images", type=bounded(int, 1, 100_000), default=256, help="images per request")
    p.add_argument("--max-frames", type=bounded(int, 2, 10_000), default=120, help="frames per interpolation")
    p.add_argument("--max-body-bytes", type=bounded(int, 1024, 1 << 30), default=4_000_000)
    p.add_argument("--max-pending", type=bounded(int, 1, 1_000_000), default=1024,
                   help="requests queued per model before answering 429")
    p.add_argument("--timeout-s", type=bounded(float, 0, 86_400, low_inclusive=False), default=30.0,
                   help="answer 503 to a request not done in this time")
    p.add_argument("--threads", type=positive_int, help="CPU threads for torch / ONNX Runtime")
    p.add_argument("--directions", type=bounded(int, 0, 64), default=8,
                   help="GANSpace latent directions per image model (0: none)")
    p.add_argument("--log-level", choices=("critical", "error", "warning", "info", "debug"), default="info")
    p.set_defaults(func=run)
    return p


def is_loopback(host: str) -> bool:
    """True for addresses only this machine can reach (127.0.0.0/8, ::1, localhost)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def settings_from_args(args: argparse.Namespace):
    """The :class:`~deconvgan.serve.settings.ServeSettings` the arguments describe (token read from its variable)."""
    from deconvgan.serve.settings import ServeSettings, parse_snapshot_args

    token = None
    if args.token_env is not None:
        token = os.environ.get(args.token_env)
        if not token:
            raise ConfigError(f"--token-env {args.token_env}: the environment variable is not set or empty; export "
                              f"{args.token_env}=<a secret> first")
    return ServeSettings(
        snapshots=parse_snapshot_args(args.models), host=args.host, port=args.port, backend=args.backend,
        max_batch=args.max_batch, max_delay_ms=args.max_delay_ms, token_env=args.token_env, token=token,
        cors_origins=tuple(args.cors_origin), max_images_per_request=args.max_images, max_frames=args.max_frames,
        max_body_bytes=args.max_body_bytes, max_pending=args.max_pending, request_timeout_s=args.timeout_s,
        threads=args.threads, directions=args.directions,
    )


def run(args: argparse.Namespace) -> int:
    """Load the snapshots, then serve until Ctrl-C / SIGTERM (uvicorn shuts down gracefully)."""
    try:
        import fastapi  # noqa: F401
        import prometheus_client  # noqa: F401
        import uvicorn
    except ImportError:
        raise ConfigError(MISSING_EXTRA) from None
    from deconvgan.serve.app import create_app

    settings = settings_from_args(args)
    if not is_loopback(settings.host):
        print(f"warning: --host {settings.host} is reachable from other machines"
              + ("" if settings.token else "; anyone who can reach it can use it (set a token with --token-env)"),
              file=sys.stderr)
    app = create_app(settings)
    names = ", ".join(settings.snapshots)
    shown_host = f"[{settings.host}]" if ":" in settings.host else settings.host
    print(f"serving {names} on http://{shown_host}:{settings.port}/ (API docs at /docs); Ctrl-C stops",
          file=sys.stderr)
    try:
        uvicorn.run(app, host=settings.host, port=settings.port, log_level=args.log_level, access_log=False)
    except KeyboardInterrupt:  # uvicorn shut down gracefully on Ctrl-C, then re-raised it: the usual way to stop
        print("stopped", file=sys.stderr)
        return 130
    return 0
