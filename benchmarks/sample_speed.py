"""Sampling speed: PyTorch eager (plain, BatchNorm folded, + channels_last) against ONNX Runtime, on the CPU.

    python benchmarks/sample_speed.py [--calls 2000] [--batch 256] [--threads 1 2] [--busy 0 1]

Run it from the repository root on a quiet machine (``uptime`` load well below 1 per core): other
processes on the host show up directly in the latencies. Prints a markdown table with, for the
64x64 RGB DCGAN generator (the pytorch/examples shape, g_width 64) and the 28x28 MNIST generator:
GFLOP per image (torch.utils.flop_counter), batch-1 latency (median and p99 over ``--calls`` calls
after warm-up) and batch-``--batch`` throughput, for each path and thread count.

Each thread count runs in its own worker process with ``OMP_WAIT_POLICY=PASSIVE`` (spinning OpenMP
threads collapse when the host squeezes both vCPUs onto one core) and ``OMP_NUM_THREADS``; ONNX
Runtime gets the same number of intra-op threads, with spinning off to match, and with more than one
thread also a second session with spinning on (its default) for comparison.
The paths are interleaved (blocks of calls in rotating order), so host noise hits them all alike.
``--busy 0 1`` measures everything again with one busy process (a Python loop on one core) running
beside the worker, the contention under which spinning threads are said to hurt.
Weights are random (speed does not depend on them); every path is checked against eager first.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from _timing import host_cpu_seconds

MODELS = {  # name -> ModelConfig keyword arguments
    "DCGAN 64x64 RGB": {"resolution": 64, "channels": 3, "g_width": 64},
    "MNIST 28x28": {"resolution": 28, "channels": 1},
}
PATHS = ("eager (no_grad)", "eager, BN folded, inference_mode", "eager, BN folded, channels_last, inference_mode",
         "ONNX Runtime (graph opt. all)", "ONNX Runtime (graph opt. all), spinning threads")
THROUGHPUT_BUDGET_S = 40.0  # per model and thread count: how long the batch-B rounds may take in all


def prepare(folder: Path) -> dict[str, dict]:
    """Snapshots and checked ONNX exports of each generator in ``folder``; GFLOP per image."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from deconvgan.checkpoint import save_snapshot
    from deconvgan.config import ModelConfig
    from deconvgan.export import export_onnx
    from deconvgan.models import build_generator

    info = {}
    for i, (name, kwargs) in enumerate(MODELS.items()):
        cfg = ModelConfig(**kwargs)
        torch.manual_seed(0)
        generator = build_generator(cfg).eval()
        with FlopCounterMode(display=False) as counter, torch.no_grad():
            generator(torch.zeros(1, cfg.latent_dim))
        snapshot = folder / f"g{i}.safetensors"
        save_snapshot(snapshot, generator, cfg)
        report = export_onnx(snapshot, folder / f"g{i}.onnx")  # raises if ORT does not match eager
        info[name] = {"snapshot": str(snapshot), "onnx": str(report.path), "gflop": counter.get_total_flops() / 1e9}
    return info


def worker(threads: int, models: dict[str, dict], calls: int, batch: int) -> list[dict]:
    """Time every path of every model with ``threads`` threads; one result dict per (model, path)."""
    import numpy as np
    import onnxruntime as ort
    import torch

    from deconvgan.checkpoint import load_snapshot
    from deconvgan.models import fuse_for_inference

    torch.set_num_threads(threads)
    rows = []
    for name, paths in models.items():
        generator, info = load_snapshot(paths["snapshot"])
        fused = fuse_for_inference(generator)
        fused_cl = fuse_for_inference(generator).to(memory_format=torch.channels_last)

        def session(onnx_path: str, spin: bool) -> Callable:
            options = ort.SessionOptions()
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
            options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
            options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spin else "0")
            sess = ort.InferenceSession(onnx_path, options, providers=["CPUExecutionProvider"])
            return lambda z: sess.run(["image"], {"z": z.numpy()})[0]

        def eager(model: torch.nn.Module, mode: Callable) -> Callable:
            def call(z: torch.Tensor) -> np.ndarray:
                with mode():
                    return model(z).numpy()
            return call

        runners = dict(zip(PATHS, (
            eager(generator, torch.no_grad), eager(fused, torch.inference_mode), eager(fused_cl, torch.inference_mode),
            session(paths["onnx"], spin=False), session(paths["onnx"], spin=True),
        ), strict=True))
        if threads == 1:  # no pool threads that could spin
            del runners[PATHS[-1]]
        dim = info.model.latent_dim
        z_check = torch.randn(5, dim, generator=torch.Generator().manual_seed(1))
        reference = runners[PATHS[0]](z_check)
        diffs = {p: float(np.abs(run(z_check) - reference).max()) for p, run in runners.items()}
        # inputs prepared outside the timed calls; ORT's numpy view of a CPU tensor is free
        z1, zb = torch.randn(1, dim), torch.randn(batch, dim)
        latency = interleaved(runners, z1, rounds=40, per_round=max(1, calls // 40), warmup=100)
        once = {p: timed(run, zb) for p, run in runners.items()}  # warm-up, and the size of a round
        rounds = max(3, min(15, int(THROUGHPUT_BUDGET_S / max(sum(once.values()), 1e-9))))
        throughput = interleaved(runners, zb, rounds=rounds, per_round=1, warmup=0)
        for p in runners:
            ms = sorted(t * 1e3 for t in latency[p])
            rows.append({"model": name, "threads": threads, "path": p, "median_ms": statistics.median(ms),
                         "p99_ms": ms[min(len(ms) - 1, int(0.99 * len(ms)))], "calls": len(ms),
                         "images_per_s": batch / statistics.median(throughput[p]), "max_abs_diff": diffs[p]})
    return rows


def timed(run: Callable, z) -> float:
    start = time.perf_counter()
    run(z)
    return time.perf_counter() - start


def interleaved(runners: dict[str, Callable], z, rounds: int, per_round: int, warmup: int) -> dict[str, list[float]]:
    """Per-call seconds of each runner: ``rounds`` blocks of ``per_round`` calls, order rotating per round."""
    names = list(runners)
    for name in names:
        for _ in range(warmup):
            runners[name](z)
    times: dict[str, list[float]] = {name: [] for name in names}
    for r in range(rounds):
        for name in names[r % len(names):] + names[:r % len(names)]:
            run, out = runners[name], times[name]
            for _ in range(per_round):
                out.append(timed(run, z))
    return times


def busy_processes(n: int) -> list[subprocess.Popen]:
    """``n`` processes that each keep one core busy (a pure-Python loop) until killed."""
    return [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000, help="batch-1 calls per path (after warm-up)")
    parser.add_argument("--batch", type=int, default=256, help="batch size of the throughput measurement")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--busy", type=int, nargs="+", default=[0],
                        help="busy processes beside the worker, one measurement per value (e.g. 0 1)")
    parser.add_argument("--worker", type=int, help=argparse.SUPPRESS)  # internal: run one thread count
    parser.add_argument("--models", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker is not None:
        print(json.dumps(worker(args.worker, json.loads(args.models), args.calls, args.batch)))
        return 0

    import onnxruntime
    import torch

    load_before, cpu_before = os.getloadavg(), host_cpu_seconds()
    rows, start = [], time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        models = prepare(Path(tmp))
        for busy in args.busy:
            for threads in args.threads:
                env = dict(os.environ, OMP_WAIT_POLICY="PASSIVE", OMP_NUM_THREADS=str(threads),
                           MKL_NUM_THREADS=str(threads))
                command = [sys.executable, __file__, "--worker", str(threads), "--models", json.dumps(models),
                           "--calls", str(args.calls), "--batch", str(args.batch)]
                loaders = busy_processes(busy)
                try:
                    done = subprocess.run(command, env=env, check=True, capture_output=True, text=True)
                finally:
                    for loader in loaders:
                        loader.kill()
                        loader.wait()
                rows += [{**row, "busy": busy} for row in json.loads(done.stdout.strip().splitlines()[-1])]
    load_after, cpu_after, elapsed = os.getloadavg(), host_cpu_seconds(), time.perf_counter() - start
    # CPU time of everyone but this benchmark (its busy processes included), per second of the run
    ours = sum(getattr(resource.getrusage(who), f) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
               for f in ("ru_utime", "ru_stime"))
    if cpu_before is not None and cpu_after is not None:
        others = max(cpu_after[0] - cpu_before[0] - ours, 0.0) / elapsed
        steal = (cpu_after[1] - cpu_before[1]) / elapsed
        noise = f"other processes used {others:.2f} CPUs, hypervisor steal {steal:.2f}"
    else:
        noise = "other processes' CPU use unknown (no /proc/stat)"

    print(f"torch {torch.__version__}, onnxruntime {onnxruntime.__version__}, "
          f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs; "
          f"load average (1 min) {load_before[0]:.2f} before, {load_after[0]:.2f} after (this run included); "
          f"{noise} CPUs on average during the run\n")
    print(f"| generator | GFLOP/image | busy processes beside | threads | path | batch-1 median (ms) "
          f"| batch-1 p99 (ms) | batch-{args.batch} images/s | max abs diff vs eager |")
    print("|---|---:|---:|---:|---|---:|---:|---:|---:|")
    for row in rows:
        print(f"| {row['model']} | {models[row['model']]['gflop']:.3f} | {row['busy']} | {row['threads']} "
              f"| {row['path']} | {row['median_ms']:.3f} | {row['p99_ms']:.3f} | {row['images_per_s']:.0f} "
              f"| {row['max_abs_diff']:.1e} |")
    print()
    for busy, threads, name in ((b, t, n) for b in args.busy for t in args.threads for n in MODELS):
        mine = [r for r in rows if r["busy"] == busy and r["threads"] == threads and r["model"] == name]
        spin = {r["path"].endswith("spinning threads"): r for r in mine if r["path"].startswith("ONNX")}
        if len(spin) == 2:
            print(f"- {name}, {threads} threads, {busy} busy process(es): ONNX Runtime with spinning threads / "
                  f"without: batch-1 median {spin[True]['median_ms'] / spin[False]['median_ms']:.2f}x, "
                  f"p99 {spin[True]['p99_ms'] / spin[False]['p99_ms']:.2f}x, batch-{args.batch} images/s "
                  f"{spin[True]['images_per_s'] / spin[False]['images_per_s']:.2f}x")
    for busy, threads, name in ((b, t, n) for b in args.busy for t in args.threads for n in MODELS):
        mine = [r for r in rows if r["busy"] == busy and r["threads"] == threads and r["model"] == name]
        best = min(mine, key=lambda r: r["median_ms"])
        ort_row = min((r for r in mine if r["path"].startswith("ONNX")), key=lambda r: r["median_ms"])
        ort_tp = max(r["images_per_s"] for r in mine if r["path"].startswith("ONNX"))
        eager_best = min((r for r in mine if r["path"].startswith("eager")), key=lambda r: r["median_ms"])
        eager_tp = max(r["images_per_s"] for r in mine if r["path"].startswith("eager"))
        target = f" (target <= 1.5 ms: {'met' if best['median_ms'] <= 1.5 else 'NOT met'})" if "64" in name else ""
        print(f"- {name}, {threads} thread(s), {busy} busy: fastest batch-1 median {best['median_ms']:.3f} ms "
              f"({best['path']}){target}; best ONNX Runtime vs best eager: batch-1 "
              f"{eager_best['median_ms'] / ort_row['median_ms']:.2f}x, batch-{args.batch} "
              f"{ort_tp / eager_tp:.2f}x (> 1: ONNX Runtime faster)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
