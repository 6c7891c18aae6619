"""Stacked MNIST mode coverage (VEEGAN / PacGAN protocol): DCGAN with and without mode-collapse remedies.

    python benchmarks/stacked_mnist.py [--configs dcgan,pack2] [--seeds 0,1,2] [--kimg 75] [--threads 1]
                                       [--out runs/bench-stacked-mnist] [--data-root ../shared/data]

Every (configuration, seed) trains the ``stacked-mnist`` preset (with the configuration's overrides)
or the ``stacked-mnist-deep`` one for the same number of images with ``deconvgan train``, then
``deconvgan evaluate --metrics mode-coverage`` classifies each channel of 26,000 samples of the final
snapshot with the tool's MNIST classifier (>= 99% test accuracy) and counts the digit triples hit (of
1000) and KL(generated histogram || uniform), with the classifier's mean confidence on the generated
channels. Prints one line per run, then mean ± std per configuration next to the published rows and
the real-data floor: 26,000 real stacked test images scored the same way (a perfect generator could
not do better than sampling noise, KL ~ 0.02). Finished runs are kept under --out and not repeated,
so the script can be stopped and started again.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

from _runs import Row, add_run_arguments, choices, data_root, mean_std, minutes, run_row

from deconvgan.atomic import write_text

CONFIGS = {  # name -> (table label, preset, --set overrides)
    "dcgan": ("DCGAN (deconvgan preset)", "stacked-mnist", ()),
    "pack2": ("DCGAN + PacGAN packing m=2", "stacked-mnist", ("model.d_pack=2",)),
    "mbstd": ("DCGAN + minibatch stddev (group 4)", "stacked-mnist", ("model.d_mbstd=4",)),
    "spectral": ("DCGAN + spectral norm in D", "stacked-mnist", ("model.d_norm=spectral",)),
    "deep": ("DCGAN, depth 2 (the mnist-28-deep recipe)", "stacked-mnist", ("model.g_depth=2", "model.d_depth=2")),
    "deep-pack2": ("DCGAN, depth 2 + packing m=2", "stacked-mnist",
                   ("model.g_depth=2", "model.d_depth=2", "model.d_pack=2")),
    "deep-decay": ("DCGAN, depth 2 + linear rate decay to 0", "stacked-mnist",
                   ("model.g_depth=2", "model.d_depth=2", "train.lr_decay=linear")),
    # the stacked-mnist-deep preset: depth 2 + linear rate decay + lazy R1 (gamma 1, every 16 steps)
    "deep-decay-r1": ("DCGAN, depth 2 + linear rate decay + lazy R1 (γ 1, every 16)", "stacked-mnist-deep", ()),
    # the two leaders of the 60-kimg screen's second half (README), each on top of that preset
    "deep-decay-r1-resize": ("stacked-mnist-deep + resize-convolution upsampling", "stacked-mnist-deep",
                             ("model.upsample=resize",)),
    "deep-decay-r1-mbstd": ("stacked-mnist-deep + minibatch stddev (group 4)", "stacked-mnist-deep",
                            ("model.d_mbstd=4",)),
}
PUBLISHED = [  # (source, model, modes, KL)
    ("VEEGAN (Srivastava et al. 2017), Table 2", "DCGAN", "99", "3.40"),
    ("PacGAN (Lin et al. 2018), Table 3", "DCGAN", "78.9 ± 6.46", "4.50 ± 0.24"),
    ("PacGAN (Lin et al. 2018), Table 3", "PacDCGAN2", "1000.0 ± 0.0", "0.06 ± 0.01"),
]


def real_floor(root: str, out: Path) -> dict[str, float]:
    """Modes, KL and confidence of 26,000 real stacked test images under the same classifier (cached)."""
    path = out / "real-floor.json"
    if path.is_file():
        return json.loads(path.read_text())
    from deconvgan.config import DataConfig
    from deconvgan.data import load_dataset
    from deconvgan.metrics.classifier import domain_classifier
    from deconvgan.metrics.mode_coverage import DEFAULT_SAMPLES, mode_coverage

    cfg = DataConfig(source="stacked-mnist", root=root, split="test", download=False, stacked_count=DEFAULT_SAMPLES)
    result = mode_coverage(load_dataset(cfg, 28, 3).images, domain_classifier(cfg, 28, 3, progress=False))
    floor = {"modes": float(result.modes), "modes-kl": result.kl, "modes-confidence": result.confidence}
    out.mkdir(parents=True, exist_ok=True)
    write_text(path, json.dumps(floor, indent=2) + "\n")
    return floor


def confidence(metrics: dict) -> str:
    """The mean channel confidence, or a dash for results scored before it was reported."""
    return f"{metrics['modes-confidence']:.3f}" if "modes-confidence" in metrics else "–"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", default="dcgan,pack2", help=f"comma-separated, of {', '.join(CONFIGS)}")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--kimg", type=float, default=75.0, help="training images per run, in thousands")
    add_run_arguments(parser, "runs/bench-stacked-mnist")
    args = parser.parse_args()
    root = data_root(args.data_root)
    names = choices(parser, "--configs", args.configs, CONFIGS)
    seeds = [int(s) for s in args.seeds.split(",")]

    results: dict[str, list[dict]] = {}
    for name in names:
        label, preset, sets = CONFIGS[name]
        for seed in seeds:
            row = Row(f"{name}-{args.kimg:g}kimg-seed{seed}", preset, args.kimg, seed, sets,
                      metrics=("mode-coverage",), labels={"config": label})
            results.setdefault(name, []).append(run_row(row, args.out, root, args.threads, archive=True))

    print(f"\nStacked MNIST, {args.kimg:g} kimg per run, 26,000 samples of the final snapshot per run\n")
    print("| run | modes (of 1000) | KL | confidence | training time | training images/s |")
    print("|---|---|---|---|---|---|")
    for name in names:
        for r in results[name]:
            m = r["metrics"]
            print(f"| {r['config']}, seed {r['seed']} | {m['modes']:.0f} | {m['modes-kl']:.3f} | {confidence(m)} | "
                  f"{minutes(r['train_wall_s'])} | {r['images_per_s']:.0f} |")
    threads = results[names[0]][0]["threads"]
    print(f"\n(torch threads per run: {threads})\n")
    floor = real_floor(root, args.out)
    print("| model | source | modes (of 1000) | KL(generated ‖ uniform) | mean channel confidence |")
    print("|---|---|---|---|---|")
    for name in names:
        runs = results[name]
        modes = [r["metrics"]["modes"] for r in runs]
        kls = [r["metrics"]["modes-kl"] for r in runs]
        confidences = [r["metrics"]["modes-confidence"] for r in runs if "modes-confidence" in r["metrics"]]
        time_s = statistics.mean(r["train_wall_s"] for r in runs)
        print(f"| {runs[0]['config']} | deconvgan, {len(runs)} seeds, {args.kimg:g} kimg ({minutes(time_s)} each) "
              f"| {mean_std(modes)} | {mean_std(kls, 3)} | {mean_std(confidences, 3) if confidences else '–'} |")
    print(f"| real stacked test images (the floor) | 26,000 images, the same classifier | {floor['modes']:.0f} | "
          f"{floor['modes-kl']:.3f} | {floor['modes-confidence']:.3f} |")
    for source, model, modes, kl in PUBLISHED:
        print(f"| {model} | {source} | {modes} | {kl} | |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
