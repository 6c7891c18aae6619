"""Upsamplers at the same budget: transposed convolution vs resize-convolution vs pixel shuffle on MNIST.

    python benchmarks/upsamplers.py [--upsamplers transposed,resize,pixelshuffle] [--kimg 150]
                                    [--num-generated 2000] [--speed-steps 60] [--threads 1]
                                    [--out runs/bench-upsamplers] [--data-root ../shared/data]

Each upsampler trains the ``mnist-28`` preset (only ``model.upsample`` changes) for the same number
of images and seed, then its final snapshot is evaluated against the 10,000 test images: Inception
FID, the domain FD-classifier, and the spectral artifact score (distance of the radially averaged
power spectrum from the real one, and the energy at the stride-2 periodic frequencies relative to
their neighbours; the real images' ratio is printed for scale). Training speed is timed apart, in
this process, alternating the three (A B C A B C) so that a busy host affects them alike; the
runs' wall-clock times are not compared, since other jobs may have shared the machine with them.
"""

from __future__ import annotations

import argparse
import statistics

from _runs import Row, add_run_arguments, choices, data_root, run_row

UPSAMPLERS = {
    "transposed": "transposed convolution (k4 s2)",
    "resize": "nearest resize + convolution",
    "pixelshuffle": "pixel shuffle (sub-pixel conv, ICNR init)",
}


def images_per_s(upsample: str, steps: int, root: str, images) -> float:
    """Median images/s over ``steps`` training steps of the preset with ``upsample`` (after a warm-up step)."""
    from _loop_speed import loop_images_per_s, timed_config

    return loop_images_per_s(timed_config("mnist-28", [f"model.upsample={upsample}", f"data.root={root}"], steps),
                             images)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--upsamplers", default=",".join(UPSAMPLERS))
    parser.add_argument("--kimg", type=float, default=150.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--num-generated", type=int, default=2000,
                        help="generated images for FID and spectra (FID is biased upwards at small N: compare rows)")
    parser.add_argument("--speed-steps", type=int, default=60, help="training steps per speed measurement")
    parser.add_argument("--speed-rounds", type=int, default=3)
    add_run_arguments(parser, "runs/bench-upsamplers")
    args = parser.parse_args()
    root = data_root(args.data_root)
    names = choices(parser, "--upsamplers", args.upsamplers, UPSAMPLERS)

    results = {}
    for name in names:
        row = Row(f"{name}-{args.kimg:g}kimg-seed{args.seed}", "mnist-28", args.kimg, args.seed,
                  sets=(f"model.upsample={name}",), metrics=("fid", "fd-classifier", "spectral"),
                  eval_args=("--num-generated", str(args.num_generated), "--num-real", "10000"))
        results[name] = run_row(row, args.out, root, args.threads)

    import torch

    from deconvgan.config import DataConfig
    from deconvgan.data import load_dataset

    if args.threads:
        torch.set_num_threads(args.threads)
    images = load_dataset(DataConfig(source="mnist", root=root), 28, 1).images
    speeds: dict[str, list[float]] = {name: [] for name in names}
    for _ in range(args.speed_rounds):  # A B C A B C ...
        for name in names:
            speeds[name].append(images_per_s(name, args.speed_steps, root, images))

    print(f"\nmnist-28 preset, {args.kimg:g} kimg each, seed {args.seed}; final snapshot, {args.num_generated} "
          f"generated vs 10,000 test images; training speed: {torch.get_num_threads()} thread(s), batch 64, "
          f"median of {args.speed_rounds} alternating rounds of {args.speed_steps} steps\n")
    print("| upsampler | FID | FD-classifier | spectral distance | periodic peak ratio (real) | "
          "training images/s |")
    print("|---|---|---|---|---|---|")
    for name in names:
        m = results[name]["metrics"]
        print(f"| {UPSAMPLERS[name]} | {m['fid']:.2f} | {m['fd-classifier']:.3f} | {m['spectral-distance']:.4f} | "
              f"{m['periodic-ratio']:.2f} ({m['periodic-ratio-real']:.2f}) | {statistics.median(speeds[name]):.0f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
