"""Load on ``deconvgan serve``: concurrent single-image clients, dynamic batching on and off, against offline speed.

    python benchmarks/serve_load.py [SNAPSHOT_OR_RUN] [--seconds 10] [--clients 1 8 32] [--threads 1]
                                    [--backend auto] [--max-batch 64] [--max-delay-ms 5]

Loopback only and bounded in time: ``deconvgan serve`` runs as a subprocess on 127.0.0.1 (a free port),
once with dynamic batching on (``--max-batch 64 --max-delay-ms 5``, the defaults) and once off
(``--max-batch 1``). Against each, 1, 8 and 32 clients (raw asyncio streams, one keep-alive connection
per client, in this process) each ask for one image at a time, ``GET /v1/models/NAME/images/SEED.png``, for
``--seconds`` after a warm-up of a second or two. Every request names a seed no request has named before, so
neither the browser-style cache (ETag, 304) nor anything else can answer from memory: each answer is a
generator run and a PNG encoding. Prints a markdown table of requests/s, images/s (the same here: one image
per request), p50 and p99 latency, the mean batch the server merged (from its /metrics), and the errors:
5xx, other non-200 answers and lost requests (no answer at all: connection errors, timeouts).

Next to it, in a separate process with the same threads, the offline figures of the same model through the
same code path the server uses (the server's backend, latents as ``deconvgan sample`` draws them, the same PNG
encoder): the throughput of 1024 images in batches of 64 and the latency of one image (batch 1), median and
p99. The serving targets are checked against them: at 32 clients served images/s >= 80% of the offline batch
throughput; at 1 client p99 <= the batch-1 median + 2 ms; zero 5xx and zero lost requests.

Without SNAPSHOT_OR_RUN a generator of the ``mnist-28`` preset with random weights is made (speed does not
depend on the weights). ``OMP_WAIT_POLICY=PASSIVE`` for the server and the offline worker; the server gets
``--threads`` threads (default 1, so that the clients have the other core of a 2-core machine). Run it on a
quiet machine: the last line says how busy the rest of the host was.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from _timing import HostNoise

MODEL = "bench"  # the served model's name
OFFLINE_IMAGES, OFFLINE_BATCH = 1024, 64
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


# --- the offline reference, in its own process ------------------------------------------------------------


def offline_worker(snapshot: str, backend: str, threads: int | None, max_batch: int, seconds: float) -> dict:
    """Images/s of 1024 images in batches of 64 and batch-1 latency, through the server's own code path."""
    import torch

    from deconvgan.serve import ServeSettings
    from deconvgan.serve.encode import png_bytes
    from deconvgan.serve.registry import load_models, warm_up
    from deconvgan.serve.render import seed_inputs

    if threads is not None:
        torch.set_num_threads(threads)  # as create_app does
    settings = ServeSettings(snapshots={MODEL: Path(snapshot)}, backend=backend, max_batch=max_batch,
                             threads=threads, directions=0)
    model = load_models(settings)[MODEL]
    if model.is_texture:
        raise SystemExit(f"{snapshot} is a texture model: this benchmark loads image models (tiles run alone)")
    warm_up(model, settings)

    def serve(seeds: list[int]) -> list[bytes]:  # what GET .../images/SEED.png computes, minus HTTP and queueing
        images = model.backend.images(*seed_inputs(model, seeds, None, None))
        return [png_bytes(image) for image in images]

    serve(list(range(OFFLINE_BATCH)))  # warm-up
    rounds = []
    for r in range(3):
        first = 1_000_000 * (r + 1)
        start = time.perf_counter()
        for at in range(first, first + OFFLINE_IMAGES, OFFLINE_BATCH):
            serve(list(range(at, at + OFFLINE_BATCH)))
        rounds.append(OFFLINE_IMAGES / (time.perf_counter() - start))
    latencies, seeds = [], itertools.count(10_000_000)
    for _ in range(20):
        serve([next(seeds)])
    end = time.perf_counter() + seconds
    while time.perf_counter() < end and len(latencies) < 5000:
        start = time.perf_counter()
        serve([next(seeds)])
        latencies.append(time.perf_counter() - start)
    return {"backend": model.backend.name, "row_block": model.backend.row_block,
            "batch_images_per_s": statistics.median(rounds), "batch1_ms": percentiles(latencies),
            "batch1_calls": len(latencies), "resolution": model.info.model.resolution,
            "channels": model.info.model.channels}


def percentiles(seconds: list[float]) -> dict[str, float]:
    """p50 and p99 in milliseconds (nearest rank)."""
    ms = sorted(s * 1e3 for s in seconds)
    if not ms:
        return {"p50": float("nan"), "p99": float("nan")}
    return {"p50": ms[(len(ms) - 1) // 2], "p99": ms[min(len(ms) - 1, int(0.99 * len(ms)))]}


# --- the server -------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """``deconvgan serve`` in a subprocess on 127.0.0.1, ready (``/readyz`` 200) when entered."""

    def __init__(self, snapshot: str, env: dict[str, str], args: argparse.Namespace, max_batch: int,
                 max_delay_ms: float) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.command = [sys.executable, "-m", "deconvgan", "serve", f"{MODEL}={snapshot}", "--host", "127.0.0.1",
                        "--port", str(self.port), "--backend", args.backend, "--max-batch", str(max_batch),
                        "--max-delay-ms", f"{max_delay_ms:g}", "--directions", "0", "--log-level", "warning",
                        "--max-pending", "4096"]
        if args.threads:
            self.command += ["--threads", str(args.threads)]
        self.env = env

    def __enter__(self) -> Server:
        self.process = subprocess.Popen(self.command, env=self.env)
        deadline = time.monotonic() + 600  # loading, ONNX export and calibration
        while True:
            if self.process.poll() is not None:
                raise SystemExit(f"the server exited with status {self.process.returncode}: {' '.join(self.command)}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                self.process.kill()
                raise SystemExit("the server was not ready within 10 minutes")
            time.sleep(0.2)

    def batches(self) -> tuple[float, float]:
        """(images, generator calls) so far, from the server's batch-size histogram."""
        text = httpx.get(f"{self.url}/metrics", timeout=10).text
        found = {}
        for kind in ("sum", "count"):
            match = re.search(rf'^deconvgan_batch_size_images_{kind}{{model="{MODEL}"}} (\S+)$', text, re.M)
            found[kind] = float(match.group(1)) if match else 0.0
        return found["sum"], found["count"]

    def __exit__(self, *exc: object) -> None:
        self.process.send_signal(signal.SIGINT)  # uvicorn's graceful shutdown
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


# --- the clients ------------------------------------------------------------------------------------------


class Connection:
    """One keep-alive HTTP/1.1 connection on raw asyncio streams, for GETs one at a time.

    The load needs a client much faster than the server: httpx's AsyncClient tops out near 170 requests/s
    on this machine (its own overhead: the same server answers ``/healthz`` about 10x faster to a plain
    sequential client), which would have made the client the bottleneck of every row.
    """

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def get(self, path: str) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        self.writer.write(f"GET {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n\r\n".encode())
        await self.writer.drain()
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        length = re.search(rb"(?im)^content-length:\s*(\d+)", head)
        if length is None:
            raise ConnectionError(f"GET {path}: an answer without Content-Length")
        return status, await self.reader.readexactly(int(length.group(1)))

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


async def load(url: str, clients: int, seconds: float, warmup: float, first_seed: int | None) -> dict:
    """``clients`` concurrent loops of one GET at a time, each on its own keep-alive connection, for ``seconds``
    after ``warmup``: images of new seeds from ``first_seed`` on, or (None) ``/healthz``, the ceiling of HTTP."""
    host, port = url.removeprefix("http://").split(":")
    seeds = itertools.count(first_seed or 0)
    counts = {"ok": 0, "5xx": 0, "other": 0, "lost": 0}
    latencies: list[float] = []
    connections = [Connection(host, int(port)) for _ in range(clients)]

    async def loop(connection: Connection, end: float, record: bool) -> None:
        while time.perf_counter() < end:
            path = "/healthz" if first_seed is None else f"/v1/models/{MODEL}/images/{next(seeds)}.png"
            start = time.perf_counter()
            try:
                status, body = await asyncio.wait_for(connection.get(path), timeout=120)
            except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError, ValueError):
                counts["lost"] += 1  # no answer (errors count in the warm-up too); the next GET reconnects
                connection.close()
                continue
            elapsed = time.perf_counter() - start
            png = first_seed is None or body.startswith(PNG_SIGNATURE)
            if status != 200 or not png:
                counts["5xx" if status >= 500 else "other"] += 1
            elif record:
                counts["ok"] += 1
                latencies.append(elapsed)

    try:
        end = time.perf_counter() + warmup
        await asyncio.gather(*(loop(c, end, False) for c in connections))
        start = time.perf_counter()
        await asyncio.gather(*(loop(c, start + seconds, True) for c in connections))
        elapsed = time.perf_counter() - start  # until the last request started in time has its answer
    finally:
        for connection in connections:
            connection.close()
    return {**counts, "clients": clients, "seconds": elapsed, "requests_per_s": counts["ok"] / elapsed,
            "ms": percentiles(latencies)}


# --- main ---------------------------------------------------------------------------------------------------


def default_snapshot(folder: Path) -> Path:
    """A snapshot of the mnist-28 preset's generator with random weights (seed 0)."""
    import torch

    from deconvgan.checkpoint import save_snapshot
    from deconvgan.configio import load_config
    from deconvgan.models import build_generator

    model_cfg = load_config("mnist-28").model
    torch.manual_seed(0)
    path = folder / "mnist-28-random.safetensors"
    save_snapshot(path, build_generator(model_cfg).eval(), model_cfg, dataset="none (random weights)")
    return path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("snapshot", nargs="?", help="snapshot file or run directory of an image model "
                        "(default: the mnist-28 preset's generator with random weights)")
    parser.add_argument("--seconds", type=float, default=10.0, help="measured seconds per cell (default 10)")
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--threads", type=int, default=1, help="server and offline threads (default 1)")
    parser.add_argument("--backend", choices=("auto", "onnx", "torch"), default="auto")
    parser.add_argument("--max-batch", type=int, default=64, help="dynamic batching on: images per call")
    parser.add_argument("--max-delay-ms", type=float, default=5.0, help="dynamic batching on: wait for more")
    parser.add_argument("--offline-worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.offline_worker:
        print(json.dumps(offline_worker(args.snapshot, args.backend, args.threads, args.max_batch,
                                        min(args.seconds, 5.0))))
        return 0

    env = dict(os.environ, OMP_WAIT_POLICY=os.environ.get("OMP_WAIT_POLICY", "PASSIVE"),
               OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads))
    warmup = min(2.0, max(0.5, args.seconds / 5))
    modes = [("on", args.max_batch, args.max_delay_ms), ("off", 1, 0.0)]
    rows = []
    with tempfile.TemporaryDirectory() as tmp, HostNoise() as noise:
        snapshot = str(Path(args.snapshot) if args.snapshot else default_snapshot(Path(tmp)))
        worker = [sys.executable, __file__, snapshot, "--offline-worker", "--backend", args.backend,
                  "--threads", str(args.threads), "--max-batch", str(args.max_batch), "--seconds", str(args.seconds)]
        done = subprocess.run(worker, env=env, check=True, capture_output=True, text=True)
        offline = json.loads(done.stdout.strip().splitlines()[-1])
        print(f"offline: {offline['batch_images_per_s']:.0f} images/s in batches of {OFFLINE_BATCH}, batch-1 "
              f"{offline['batch1_ms']['p50']:.2f} ms median ({offline['backend']} backend)", file=sys.stderr)
        for cell, (mode, max_batch, delay) in enumerate(modes):
            with Server(snapshot, env, args, max_batch, delay) as server:
                if cell == 0:  # what this client and the HTTP stack manage without a generator
                    ceiling = asyncio.run(load(server.url, max(args.clients), min(args.seconds, 3.0), warmup, None))
                for i, clients in enumerate(args.clients):
                    before = server.batches()
                    result = asyncio.run(load(server.url, clients, args.seconds, warmup,
                                              first_seed=(10 * cell + i + 1) * 100_000_000))
                    images, calls = (a - b for a, b in zip(server.batches(), before, strict=True))
                    rows.append({**result, "batching": mode, "mean_batch": images / calls if calls else float("nan")})
                    print(f"batching {mode}, {clients} clients: {result['requests_per_s']:.0f} requests/s",
                          file=sys.stderr)

    import torch

    try:
        import onnxruntime

        ort_version = onnxruntime.__version__
    except ImportError:
        ort_version = "not installed"

    on = f"on (max batch {args.max_batch}, max delay {args.max_delay_ms:g} ms)"
    print(f"model: {args.snapshot or 'mnist-28 preset, random weights'} ({offline['resolution']}x"
          f"{offline['resolution']}x{offline['channels']}); backend {offline['backend']} (rows padded to "
          f"{offline['row_block']}); {args.threads} server thread(s); torch {torch.__version__}, onnxruntime "
          f"{ort_version}, {os.cpu_count()} CPUs; OMP_WAIT_POLICY={env['OMP_WAIT_POLICY']}\n")
    print(f"Offline, same model and code path: **{offline['batch_images_per_s']:.0f} images/s** generating "
          f"{OFFLINE_IMAGES} images in batches of {OFFLINE_BATCH} (PNG encoding included); one image (batch 1): "
          f"{offline['batch1_ms']['p50']:.2f} ms median, {offline['batch1_ms']['p99']:.2f} ms p99 "
          f"({offline['batch1_calls']} calls). HTTP alone: {ceiling['requests_per_s']:.0f} requests/s of "
          f"`GET /healthz` from {ceiling['clients']} clients (this client and the server's HTTP stack, no generator: "
          "a ceiling for the rows below).\n")
    print("| dynamic batching | clients | requests/s | images/s | p50 (ms) | p99 (ms) | mean batch | 5xx "
          "| other errors | lost | % of offline batch throughput |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for row in rows:
        print(f"| {on if row['batching'] == 'on' else 'off (max batch 1)'} | {row['clients']} "
              f"| {row['requests_per_s']:.0f} | {row['requests_per_s']:.0f} | {row['ms']['p50']:.2f} "
              f"| {row['ms']['p99']:.2f} | {row['mean_batch']:.1f} | {row['5xx']} | {row['other']} | {row['lost']} "
              f"| {100 * row['requests_per_s'] / offline['batch_images_per_s']:.0f}% |")
    print()
    verdict = lambda ok: "met" if ok else "NOT met"  # noqa: E731
    best = max((r for r in rows if r["batching"] == "on"), key=lambda r: r["clients"])
    ratio = best["requests_per_s"] / offline["batch_images_per_s"]
    print(f"- {best['clients']} clients, batching on: {ratio:.0%} of the offline batch throughput "
          f"(target >= 80%: {verdict(ratio >= 0.8)})")
    for row in (r for r in rows if r["clients"] == 1):
        budget = offline["batch1_ms"]["p50"] + 2.0
        print(f"- {row['clients']} client(s), batching {row['batching']}: p99 {row['ms']['p99']:.2f} ms against "
              f"batch-1 generation {offline['batch1_ms']['p50']:.2f} ms + 2 ms = {budget:.2f} ms "
              f"(target: {verdict(row['ms']['p99'] <= budget)})")
    fivexx, lost = sum(r["5xx"] for r in rows), sum(r["lost"] for r in rows)
    print(f"- every cell: {fivexx} 5xx, {lost} lost, {sum(r['other'] for r in rows)} other errors "
          f"(target zero 5xx and zero lost: {verdict(fivexx == 0 and lost == 0)})")
    print(f"\n{args.seconds:g} s per cell after {warmup:g} s of warm-up; {noise.describe()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
