"""MNIST and Fashion-MNIST sample quality: Inception FID (10k generated vs the 10k test images) and more.

    python benchmarks/quality_fid.py [--datasets mnist,fashion] [--seeds 0,1,2] [--kimg 400] [--plain]
                                     [--num-generated 10000] [--threads 1] [--out runs/bench-quality]
                                     [--data-root ../shared/data]

Trains the ``mnist-28-deep`` / ``fashion-28-deep`` presets (``--plain``: the depth-0 ``mnist-28`` /
``fashion-28``, 600 kimg unless --kimg says otherwise) with ``deconvgan train`` and evaluates the final
snapshot with ``deconvgan evaluate``: FID and KID with the standard 2015-12-05 Inception pool
features, precision/recall (k=3) and density/coverage in the same feature space, and the Fréchet
distance in the tool's own classifier features (FD-classifier). Prints them next to the best FID
Lucic et al. 2018 ("Are GANs created equal?", Table 2/Fig. 4) report after large-scale tuning: one
line per run, then per dataset the median FID over the seeds, its mean ± std and
the other metrics' means.
Finished runs are kept under --out and not repeated. Inception runs at single-digit images/s on a
CPU: the first evaluation of a dataset also computes (and caches) the test images' features.
"""

from __future__ import annotations

import argparse
import functools
import statistics

from _runs import Row, add_run_arguments, choices, data_root, mean_std, minutes, run_row

DATASETS = {  # name -> (preset, table label, Lucic et al. 2018 best FID); --plain drops the preset's "-deep"
    "mnist": ("mnist-28-deep", "MNIST", 6.7),
    "fashion": ("fashion-28-deep", "Fashion-MNIST", 21.5),
}
DEEP_KIMG, PLAIN_KIMG = 400.0, 600.0  # the presets' lengths


def metric_values(runs: list[dict], key: str, scale: float = 1.0) -> list[float]:
    """``scale`` x metric ``key`` of each run."""
    return [scale * r["metrics"][key] for r in runs]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default="mnist,fashion", help=f"comma-separated, of {', '.join(DATASETS)}")
    parser.add_argument("--kimg", type=float, default=None,
                        help="training images, in thousands (default: the presets' 400; 600 with --plain)")
    parser.add_argument("--plain", action="store_true", help="the depth-0 presets mnist-28 / fashion-28 instead")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--num-generated", type=int, default=10_000)
    add_run_arguments(parser, "runs/bench-quality")
    args = parser.parse_args()
    root = data_root(args.data_root)
    names = choices(parser, "--datasets", args.datasets, DATASETS)

    seeds = [int(x) for x in args.seeds.split(",")]
    kimg = args.kimg if args.kimg is not None else PLAIN_KIMG if args.plain else DEEP_KIMG
    results: dict[str, list[dict]] = {}
    for name in names:
        preset, label, _ = DATASETS[name]
        if args.plain:
            preset = preset.removesuffix("-deep")
            label = f"{label} (plain {preset})"
        for seed in seeds:
            row = Row(f"{'plain-' if args.plain else ''}{name}-{kimg:g}kimg-seed{seed}", preset, kimg, seed,
                      metrics=("fid", "kid", "prdc", "fd-classifier"),
                      eval_args=("--num-generated", str(args.num_generated), "--num-real", "10000",
                                 "--extractor", "inception"),
                      labels={"dataset": label})
            results.setdefault(name, []).append(run_row(row, args.out, root, args.threads, archive=True))

    print(f"\n{args.num_generated} generated images (seeds 0..{args.num_generated - 1}) of the final snapshot "
          "vs the 10,000 test images; precision/recall/density/coverage on Inception features\n")
    print("| run | training | FID | KID ×1000 | precision | recall | density | coverage | FD-classifier | "
          "evaluation time |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name in names:
        for r in results[name]:
            m = r["metrics"]
            print(f"| {r['dataset']}, seed {r['seed']} | {r['kimg']:g} kimg, {minutes(r['train_wall_s'])} "
                  f"({r['threads']} thread(s)) | {m['fid']:.2f} | {1000 * m['kid']:.2f} | {m['precision']:.3f} | "
                  f"{m['recall']:.3f} | {m['density']:.3f} | {m['coverage']:.3f} | {m['fd-classifier']:.3f} | "
                  f"{minutes(r['eval_wall_s'])} |")
    print("\n| dataset | training (mean per run) | FID median | FID mean ± std | Lucic et al. 2018 best FID | "
          "KID ×1000 | precision | recall | FD-classifier |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name in names:
        runs, published = results[name], DATASETS[name][2]
        values = functools.partial(metric_values, runs)
        print(f"| {runs[0]['dataset']} | {len(runs)} seed(s) × {runs[0]['kimg']:g} kimg, "
              f"{minutes(statistics.mean(r['train_wall_s'] for r in runs))} | "
              f"{statistics.median(values('fid')):.2f} | {mean_std(values('fid'), 2)} | {published} | "
              f"{mean_std(values('kid', 1000), 2)} | {mean_std(values('precision'), 3)} | "
              f"{mean_std(values('recall'), 3)} | {mean_std(values('fd-classifier'), 3)} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
