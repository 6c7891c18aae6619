"""MNIST and Fashion-MNIST sample quality: Inception FID (10k generated vs the 10k test images) and more.

    python benchmarks/quality_fid.py [--datasets mnist,fashion] [--kimg 600] [--num-generated 10000]
                                     [--threads 1] [--out runs/bench-quality] [--data-root ../shared/data]

Trains the ``mnist-28`` / ``fashion-28`` presets with ``deconvgan train`` and evaluates the final
snapshot with ``deconvgan evaluate``: FID and KID with the standard 2015-12-05 Inception pool
features, precision/recall (k=3) and density/coverage in the same feature space, and the Fréchet
distance in the tool's own classifier features (FD-classifier). Prints them next to the best FID
Lucic et al. 2018 ("Are GANs created equal?", Table 2/Fig. 4) report after large-scale tuning.
Finished runs are kept under --out and not repeated. Inception runs at single-digit images/s on a
CPU: the first evaluation of a dataset also computes (and caches) the test images' features.
"""

from __future__ import annotations

import argparse

from _runs import Row, add_run_arguments, choices, data_root, minutes, run_row

DATASETS = {  # name -> (preset, table label, Lucic et al. 2018 best FID)
    "mnist": ("mnist-28", "MNIST", 6.7),
    "fashion": ("fashion-28", "Fashion-MNIST", 21.5),
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default="mnist,fashion", help=f"comma-separated, of {', '.join(DATASETS)}")
    parser.add_argument("--kimg", type=float, default=600.0, help="training images, in thousands (the presets' 600)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--num-generated", type=int, default=10_000)
    add_run_arguments(parser, "runs/bench-quality")
    args = parser.parse_args()
    root = data_root(args.data_root)
    names = choices(parser, "--datasets", args.datasets, DATASETS)

    rows = []
    for name in names:
        preset, label, published = DATASETS[name]
        row = Row(f"{name}-{args.kimg:g}kimg-seed{args.seed}", preset, args.kimg, args.seed,
                  metrics=("fid", "kid", "prdc", "fd-classifier"),
                  eval_args=("--num-generated", str(args.num_generated), "--num-real", "10000",
                             "--extractor", "inception"),
                  labels={"dataset": label})
        rows.append((run_row(row, args.out, root, args.threads), published))

    print(f"\n{args.num_generated} generated images (seeds 0..{args.num_generated - 1}) of the final snapshot "
          "vs the 10,000 test images; precision/recall/density/coverage on Inception features\n")
    print("| dataset | training | FID | Lucic et al. 2018 best FID | KID ×1000 | precision | recall | "
          "density | coverage | FD-classifier | evaluation time |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r, published in rows:
        m = r["metrics"]
        print(f"| {r['dataset']} | {r['kimg']:g} kimg, {minutes(r['train_wall_s'])} ({r['threads']} thread(s)) | "
              f"{m['fid']:.2f} | {published} | {1000 * m['kid']:.2f} | {m['precision']:.3f} | {m['recall']:.3f} | "
              f"{m['density']:.3f} | {m['coverage']:.3f} | {m['fd-classifier']:.3f} | {minutes(r['eval_wall_s'])} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
