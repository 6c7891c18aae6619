"""FID Inception feature extraction: the engines of deconvgan.metrics.inception side by side, and the Fréchet step.

    python benchmarks/inception_speed.py [--engines torchscript,folded,onnxruntime] [--threads 1,2]
                                         [--rounds 4] [--batch 16] [--side 28] [--frechet 10000]
    python benchmarks/inception_speed.py --profile [--threads 1]   # where the reference engine's time goes
    python benchmarks/inception_speed.py --engines "" --frechet 10000   # the Fréchet step only

For each thread count, every engine extracts the features of the same ``--batch`` uint8 images
(``--side`` px grayscale, MNIST's shape by default: resized to 299 inside, as in an evaluation) in
rounds A B C, C B A, A B C, ... (each engine first as often, so a drift in host load hits all
alike), after one untimed call of the same shape each (oneDNN and ONNX Runtime prepare per shape).
A round also times the machine's FP32 matmul rate (a 2048x2048 ``torch.mm``, best of 4, same
threads). Printed per engine: images/s (median over rounds), GFLOP/s from the network's FLOPs
counted by torch.utils.flop_counter on the reference graph (2 FLOPs per multiply-add), the median
over rounds of that round's GFLOP/s / matmul rate, the same ratio per CPU-second of this process
(the work done per unit of CPU it got: nearly independent of other processes taking the cores, but
blind to threads waiting for each other), the speed-up over ``torchscript`` (median of
the rounds' ratios: two runs next to each other in time), and the largest difference of its
features from the reference's relative to the reference's largest feature. Under each table: the
matmul rates and how much CPU other processes used meanwhile (/proc/stat).

``--frechet N`` also times the Fréchet step on two sets of N random 2048-d features: the moments
(``feature_statistics``, per set) and ``frechet_distance``. ``--profile`` prints torch.profiler
self CPU time of the reference engine by op group, for one batch.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # spinning OpenMP threads collapse on a squeezed host

import torch  # noqa: E402
from _timing import HostNoise  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

from deconvgan.metrics.frechet import feature_statistics, frechet_distance  # noqa: E402
from deconvgan.metrics.inception import ENGINES, INPUT_SIZE, InceptionFeatures, load_network  # noqa: E402

REFERENCE = "torchscript"


def network_gflop_per_image() -> float:
    """FLOPs of one 299x299 image through the reference TorchScript graph (convolutions and matmuls)."""
    net, _ = load_network()
    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        net(torch.zeros(1, 3, INPUT_SIZE, INPUT_SIZE))
    return counter.get_total_flops() / 1e9


def matmul_gflops(n: int = 2048, repeats: int = 4) -> tuple[float, float]:
    """FP32 ``a @ b`` with this process's threads: (best GFLOP/s of wall time, GFLOP per CPU-second)."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    best = 0.0
    cpu = time.process_time()
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        best = max(best, 2 * n**3 / (time.perf_counter() - start) / 1e9)
    return best, repeats * 2 * n**3 / max(time.process_time() - cpu, 1e-9) / 1e9


def make_images(n: int, side: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(0)
    return torch.randint(0, 256, (n, 1, side, side), dtype=torch.uint8, generator=gen)


def timed(extract: InceptionFeatures, images: torch.Tensor) -> tuple[float, float, torch.Tensor]:
    """(images/s of wall time, images per CPU-second of this process, features)."""
    start, cpu = time.perf_counter(), time.process_time()
    features = extract(images)
    n = images.shape[0]
    return n / (time.perf_counter() - start), n / max(time.process_time() - cpu, 1e-9), features


def measure(engines: list[str], threads: int, rounds: int, images: torch.Tensor, gflop: float) -> None:
    torch.set_num_threads(threads)  # before the extractors: ONNX Runtime takes its thread count at creation
    extractors = {e: InceptionFeatures(batch_size=images.shape[0], progress=False, engine=e) for e in engines}
    rates: dict[str, list[float]] = {e: [] for e in engines}
    fractions: dict[str, list[float]] = {e: [] for e in engines}
    cpu_fractions: dict[str, list[float]] = {e: [] for e in engines}
    features: dict[str, torch.Tensor] = {}
    peaks = []
    with HostNoise() as noise:
        for e in engines:
            extractors[e](images)  # warm-up at the timed shape
        for r in range(rounds):  # A B C, C B A, ...
            peak, cpu_peak = matmul_gflops()
            peaks.append((peak, cpu_peak))
            for e in engines if r % 2 == 0 else engines[::-1]:
                rate, cpu_rate, features[e] = timed(extractors[e], images)
                rates[e].append(rate)
                fractions[e].append(rate * gflop / peak)
                cpu_fractions[e].append(cpu_rate * gflop / cpu_peak)
    reference = features.get(REFERENCE)
    for e in engines:
        ips = statistics.median(rates[e])
        speedup = (f"{statistics.median(a / b for a, b in zip(rates[e], rates[REFERENCE], strict=True)):.2f}x"
                   if REFERENCE in rates else "-")
        diff = (f"{float((features[e] - reference).abs().max() / reference.abs().max()):.1e}"
                if reference is not None else "-")
        print(f"| {e} | {threads} | {ips:.2f} | {ips * gflop:.1f} | {100 * statistics.median(fractions[e]):.0f}% "
              f"| {100 * statistics.median(cpu_fractions[e]):.0f}% | {speedup} | {diff} |", flush=True)
    print(f"({threads} thread(s): FP32 matmul rate 2048x2048 per round, wall / per CPU-second: "
          f"{', '.join(f'{p:.0f}/{c:.0f}' for p, c in peaks)} GFLOP/s; {noise.describe()})", flush=True)


def profile(threads: int, images: torch.Tensor) -> None:
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    torch.set_num_threads(threads)
    extract = InceptionFeatures(batch_size=images.shape[0], progress=False, engine=REFERENCE)
    extract(images)
    with torch_profile(activities=[ProfilerActivity.CPU]) as prof:
        extract(images)
    groups = (("convolution", ("conv",)), ("batch norm", ("batch_norm",)), ("ReLU", ("relu", "clamp_min")),
              ("average pool", ("avg_pool",)), ("max pool", ("max_pool",)), ("concatenation", ("cat",)),
              ("copies / layout changes", ("copy_", "contiguous", "clone", "to_copy")),
              ("resize to 299 (matmul)", ("mm", "matmul")))
    totals = {label: 0.0 for label, _ in groups} | {"other": 0.0}
    for event in prof.key_averages():
        if event.key.startswith("aten::"):
            name = event.key.lower()
            label = next((label for label, keys in groups if any(k in name for k in keys)), "other")
            totals[label] += event.self_cpu_time_total
    whole = sum(totals.values()) or 1.0
    print(f"{REFERENCE}, {threads} thread(s), batch {images.shape[0]}: torch.profiler self CPU time by op group")
    for label, value in sorted(totals.items(), key=lambda kv: -kv[1]):
        print(f"  {100 * value / whole:5.1f}%  {label}")


def time_frechet(n: int) -> None:
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(n, 2048, generator=gen).relu_()
    b = (torch.randn(n, 2048, generator=gen) + 0.1).relu_()
    with HostNoise() as noise:
        start = time.perf_counter()
        mu1, sigma1 = feature_statistics(a)
        mid = time.perf_counter()
        mu2, sigma2 = feature_statistics(b)
        end = time.perf_counter()
        frechet_distance(mu1, sigma1, mu2, sigma2)
        done = time.perf_counter()
    print(f"Fréchet step, {torch.get_num_threads()} thread(s), 2048-d: moments of {n} features "
          f"{(mid - start + end - mid) / 2:.1f} s per set; frechet_distance {done - end:.1f} s ({noise.describe()})")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engines", default="torchscript,folded,onnxruntime")
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--batch", type=int, default=16, help="images per timed call (one batch)")
    parser.add_argument("--side", type=int, default=28, help="side of the grayscale input images (resized to 299)")
    parser.add_argument("--frechet", type=int, default=0, metavar="N", help="also time the Fréchet step on N features")
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    engines = [e.strip() for e in args.engines.split(",") if e.strip()]  # --engines "": the Fréchet step only
    if unknown := [e for e in engines if e not in ENGINES]:
        parser.error(f"unknown engine(s) {', '.join(unknown)}: choose from {', '.join(ENGINES)}")
    images = make_images(args.batch, args.side)
    threads = [int(t) for t in args.threads.split(",")]
    if args.profile:
        for t in threads:
            profile(t, images)
        return 0
    if engines:
        gflop = network_gflop_per_image()
        print(f"OMP_WAIT_POLICY={os.environ['OMP_WAIT_POLICY']}; {args.rounds} alternating rounds of one batch of "
              f"{args.batch} {args.side}x{args.side} grayscale images; {gflop:.3f} GFLOP per image (counted)\n")
        print("| engine | threads | images/s | GFLOP/s | % of the FP32 matmul rate | same, per CPU-second "
              "| speed-up vs torchscript | max feature difference (relative) |")
        print("|---|---|---|---|---|---|---|---|")
        for t in threads:
            measure(engines, t, args.rounds, images, gflop)
    if args.frechet:
        for t in threads:
            torch.set_num_threads(t)
            time_frechet(args.frechet)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
