"""Training throughput: deconvgan's step vs a faithful pytorch/examples DCGAN step, same process.

    python benchmarks/train_speed.py [--configs 64x3,32x1,mnist28] [--threads 1,2] [--rounds 4] [--steps 8]
    python benchmarks/train_speed.py --profile [--configs ...] [--threads 1]   # where deconvgan's time goes

For each configuration and thread count the two are timed alternately on the same in-memory
images, in rounds A B, B A, A B, ... (each side first as often, so a drift in host load hits both
alike): deconvgan's `train()` (its default recipe: non-saturating loss on logits, no weight
gradients for D in the generator step, moving average of G) and a plain re-implementation of the
pytorch/examples DCGAN (nn.Sequential G and D, BatchNorm, Sigmoid + BCELoss, Adam 2e-4 /
(0.5, 0.999), its D-then-G step order, default memory format) on the identical architecture and
batch.

Both sides are measured the same way: one warm-up step, then the wall time of each of ``--steps``
steps (deconvgan's from its per-step stats.jsonl lines, the reference's with perf_counter around
its step), and one statistic of them: images/s = images / total time of the timed steps, what a
user gets. Each side's figure is the median over rounds; the ratio is the median of the rounds'
ratios (each from two runs next to each other in time). The ratio of per-step medians is printed
beside it as a check: on a quiet host the two agree; when they do not, the host was busy.
Also prints GFLOP per training image (torch.utils.flop_counter), the fraction of this machine's
measured FP32 matmul rate each reaches, the peak RSS of a deconvgan run in its own process, and
how much CPU other processes used while the table was measured.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # spinning OpenMP threads collapse on a squeezed host

import torch  # noqa: E402
from _loop_speed import loop_step_seconds, run_timed, timed_config  # noqa: E402
from _reference import SETUPS, ReferenceDCGAN, Setup, reference_models  # noqa: E402
from _runs import data_root  # noqa: E402
from _timing import HostNoise  # noqa: E402
from torch import nn  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

from deconvgan.models import build_discriminator, build_generator  # noqa: E402


def reference_flops_per_image(s: Setup, images: torch.Tensor) -> float:
    G, D = reference_models(s)
    real = images[: s.batch].float() / 127.5 - 1
    criterion = nn.BCELoss()
    with FlopCounterMode(display=False) as counter:
        label = torch.ones(s.batch)
        criterion(D(real).view(-1), label).backward()
        fake = G(torch.randn(s.batch, 100, 1, 1))
        criterion(D(fake.detach()).view(-1), label * 0).backward()
        criterion(D(fake).view(-1), label).backward()
    return counter.get_total_flops() / s.batch


# --- deconvgan ------------------------------------------------------------------------------------


def deconvgan_config(s: Setup, steps: int):
    return timed_config(None, [
        f"model.resolution={s.resolution}", f"model.channels={s.channels}", "model.g_width=64", "model.d_width=64",
        f"train.batch_size={s.batch}", "run.device=cpu"], steps)


def deconvgan_steps(s: Setup, images: torch.Tensor, steps: int) -> list[float]:
    """Seconds of each of ``steps`` steps of deconvgan's loop, after one warm-up step."""
    return loop_step_seconds(deconvgan_config(s, steps), images)


def reference_steps(s: Setup, images: torch.Tensor, steps: int) -> list[float]:
    """Seconds of each of ``steps`` steps of the reference, after one warm-up step: as :func:`deconvgan_steps`."""
    ref = ReferenceDCGAN(s, images)
    ref.step()  # warm-up
    seconds = []
    for _ in range(steps):
        start = time.perf_counter()
        ref.step()
        seconds.append(time.perf_counter() - start)
    return seconds


def images_per_s(batch: int, seconds: list[float]) -> float:
    """Images over the total time of the timed steps: the throughput a user gets."""
    return batch * len(seconds) / sum(seconds)


def median_step_images_per_s(batch: int, seconds: list[float]) -> float:
    """Images/s of the median step (insensitive to a few steps slowed by other processes)."""
    return batch / statistics.median(seconds)


def deconvgan_flops_per_image(s: Setup, images: torch.Tensor) -> float:
    cfg = deconvgan_config(s, 1)
    G, D = build_generator(cfg.model), build_discriminator(cfg.model)
    real = images[: s.batch].float() / 127.5 - 1
    softplus = nn.functional.softplus
    with FlopCounterMode(display=False) as counter:  # the loop's step: D on real and fakes, then G through frozen D
        fake = G(torch.randn(s.batch, 100))
        (softplus(-D(real)).mean() + softplus(D(fake.detach())).mean()).backward()
        D.requires_grad_(False)
        softplus(-D(fake)).mean().backward()
    return counter.get_total_flops() / s.batch


def matmul_peak_gflops(n: int = 4096, repeats: int = 8) -> float:
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    best = 0.0
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        best = max(best, 2 * n**3 / (time.perf_counter() - start) / 1e9)
    return best


def rss_child(config: str, threads: int, steps: int) -> float:
    """Peak RSS (MB) of a process that loads the data and runs deconvgan's training for ``steps`` steps."""
    code = f"import sys; sys.argv=['x']; import train_speed as b; b._rss_main({config!r}, {steps})"
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), PYTHONPATH=os.path.dirname(os.path.abspath(__file__)))
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def _rss_main(config: str, steps: int) -> None:
    s = SETUPS[config]
    deconvgan_steps(s, make_images(s), steps)
    # VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the (large) parent across fork + exec
    status = open("/proc/self/status").read() if os.path.exists("/proc/self/status") else ""
    hwm = [line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:")]
    print(int(hwm[0]) / 1024 if hwm else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


def make_images(s: Setup, n: int = 4096) -> torch.Tensor:
    if s.resolution == 28:  # the real set, as the preset trains on it (uint8, 47 MB for 60k images)
        from deconvgan.config import DataConfig
        from deconvgan.data import load_dataset

        return load_dataset(DataConfig(source="mnist", root=data_root(None), download=False), 28, 1).images
    gen = torch.Generator().manual_seed(0)
    return torch.randint(0, 256, (n, s.channels, s.resolution, s.resolution), dtype=torch.uint8, generator=gen)


OP_GROUPS = (  # (label, substrings of aten op names), first match wins
    ("convolutions, forward and backward", ("conv",)),
    ("batch norm", ("batch_norm",)),
    ("copies and memory-format changes", ("copy_", "contiguous", "clone", "to_copy")),
    ("activations", ("relu", "leaky", "tanh", "threshold", "clamp", "softplus", "sigmoid")),
    ("matmul (linear layers)", ("mm", "linear")),
    ("optimiser and moving average", ("adam", "lerp", "addcdiv", "addcmul", "sqrt", "_foreach")),
)


def profile_breakdown(s: Setup, images: torch.Tensor, steps: int) -> dict[str, float]:
    """Share of deconvgan's training-loop CPU time (self time of aten ops) per op group, steps 2.. only."""
    from torch.profiler import ProfilerActivity, profile, schedule

    with tempfile.TemporaryDirectory() as tmp:
        cfg = deconvgan_config(s, steps)
        # The loop's own steps: the first is warm-up; setup and the final snapshot fall outside the window.
        window = schedule(wait=1, warmup=1, active=steps - 2, repeat=1)
        with profile(activities=[ProfilerActivity.CPU], schedule=window) as prof:
            from deconvgan.training import loop

            original = loop.Monitor.step_done

            def step_done(monitor: loop.Monitor) -> None:
                original(monitor)
                prof.step()

            loop.Monitor.step_done = step_done
            try:
                run_timed(cfg, images, Path(tmp) / "run")
            finally:
                loop.Monitor.step_done = original
    totals: dict[str, float] = {label: 0.0 for label, _ in OP_GROUPS}
    totals["other"] = 0.0
    for event in prof.key_averages():
        if not event.key.startswith("aten::"):
            continue
        name = event.key.lower()
        label = next((label for label, keys in OP_GROUPS if any(k in name for k in keys)), "other")
        totals[label] += event.self_cpu_time_total
    whole = sum(totals.values()) or 1.0
    return {label: value / whole for label, value in totals.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", action="store_true", help="print where deconvgan's step spends its time")
    parser.add_argument("--configs", default="64x3,32x1,mnist28")
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--rounds", type=int, default=4, help="alternating runs of each side")
    parser.add_argument("--steps", type=int, default=8, help="timed steps per run (after one warm-up step)")
    args = parser.parse_args()
    if args.profile:
        for threads in (int(t) for t in args.threads.split(",")):
            torch.set_num_threads(threads)
            for key in args.configs.split(","):
                s = SETUPS[key]
                shares = profile_breakdown(s, make_images(s), max(args.steps, 4))
                print(f"{s.name}, {threads} thread(s), torch.profiler self CPU time of deconvgan's training steps:")
                for label, share in sorted(shares.items(), key=lambda kv: -kv[1]):
                    print(f"  {100 * share:5.1f}%  {label}")
        return 0
    print(f"OMP_WAIT_POLICY={os.environ['OMP_WAIT_POLICY']}; {args.rounds} alternating rounds of "
          f"{args.steps} timed steps per side\n")
    print("| configuration | threads | deconvgan images/s | reference images/s | ratio | ratio of per-step medians "
          "| GFLOP/image (ours / ref) | % of the FP32 matmul rate (ours / ref) | peak RSS, deconvgan run |")
    print("|---|---|---|---|---|---|---|---|---|")
    for threads in (int(t) for t in args.threads.split(",")):
        torch.set_num_threads(threads)
        peaks = []
        with HostNoise() as noise:
            for key in args.configs.split(","):
                s = SETUPS[key]
                peak = matmul_peak_gflops()
                peaks.append(peak)
                images = make_images(s)
                ours, ref = [], []  # per round: seconds of each timed step
                for r in range(args.rounds):  # A B, B A, A B, ...
                    sides = [(ours, deconvgan_steps), (ref, reference_steps)]
                    for out, measure in sides if r % 2 == 0 else sides[::-1]:
                        out.append(measure(s, images, args.steps))
                ours_ips = statistics.median(images_per_s(s.batch, x) for x in ours)
                ref_ips = statistics.median(images_per_s(s.batch, x) for x in ref)
                ratio = statistics.median(images_per_s(s.batch, a) / images_per_s(s.batch, b)
                                          for a, b in zip(ours, ref, strict=True))
                median_ratio = statistics.median(median_step_images_per_s(s.batch, a) /
                                                 median_step_images_per_s(s.batch, b)
                                                 for a, b in zip(ours, ref, strict=True))
                ours_gf = deconvgan_flops_per_image(s, images) / 1e9
                ref_gf = reference_flops_per_image(s, images) / 1e9
                rss = rss_child(key, threads, 2)
                print(f"| {s.name} | {threads} | {ours_ips:.0f} | {ref_ips:.0f} | {ratio:.2f}x | {median_ratio:.2f}x "
                      f"| {ours_gf:.3f} / {ref_gf:.3f} | {100 * ours_ips * ours_gf / peak:.0f}% / "
                      f"{100 * ref_ips * ref_gf / peak:.0f}% | {rss:.0f} MB |", flush=True)
        print(f"({threads} thread(s): FP32 matmul rate of torch, 4096x4096, best of 8, measured before each row: "
              f"{', '.join(f'{p:.0f}' for p in peaks)} GFLOP/s; {noise.describe()})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
