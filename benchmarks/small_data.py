"""Small data, grayscale: Fashion-MNIST on 1% and 10% of the training set, augment none / diffaugment / ada.

    python benchmarks/small_data.py --threads 1                       # the README table
    python benchmarks/small_data.py --fractions 10 --augments none,ada --seeds 0,1

Every row trains the ``fashion-28`` preset for the same budget on a seeded, class-balanced subset
(``data.fraction``, ``data.fraction_seed=0``: the same images in every row) with D's inputs augmented
as the row says, and scores its final snapshot by FD-classifier (10,000 generated vs the 10,000 test
images). The full-data run at the same budget gives the gap: the share of it an augmentation recovers
is (FD_none - FD_augmented) / (FD_none - FD_full), DiffAugment's own measure (58% on CIFAR-10 at 10%,
Zhao et al. 2020). Finished rows are kept and not rerun.
"""

from __future__ import annotations

import argparse
import statistics

from _runs import Row, add_run_arguments, choices, data_root, mean_std, minutes, progress, run_row

AUGMENTS = {"none": (), "diffaugment": ("augment.kind=diffaugment",), "ada": ("augment.kind=ada",),
            # ADA without cutout (ADA's own pipeline has no erasing): is it the cutout that costs quality?
            "ada-ct": ("augment.kind=ada", "augment.policy=[color,translation]")}
FRACTIONS = ("1", "10")  # percent of the 60,000 training images
EVAL = ("--num-generated", "10000", "--num-real", "10000")
GAP_NOISE = 1.0  # a smaller gap is too small to divide by with one seed per row (not a measured spread)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fractions", default="1,10", help="percent of the training set: 1, 10")
    parser.add_argument("--augments", default="none,diffaugment,ada", help=f"of {', '.join(AUGMENTS)}")
    parser.add_argument("--seeds", default="0")
    parser.add_argument("--kimg", type=float, default=100.0, help="training images per run, in thousands")
    parser.add_argument("--progress-every", type=float,
                        help="also score the kept snapshots of the first seed's rows about every this many kimg")
    add_run_arguments(parser, "runs/bench-small-data")
    args = parser.parse_args()
    root = data_root(args.data_root)
    fractions = choices(parser, "--fractions", args.fractions, FRACTIONS)
    augments = choices(parser, "--augments", args.augments, AUGMENTS)
    seeds = [int(s) for s in args.seeds.split(",")]

    over_the_run: dict[str, list[dict]] = {}  # "1% ada" -> the first seed's progress points

    def rows(percent: str, augment: str) -> list[dict]:
        sets = AUGMENTS[augment] + ((f"data.fraction={int(percent) / 100:g}",) if percent != "100" else ())
        made = [Row(f"fashion{percent}-{augment}-{args.kimg:g}kimg-seed{seed}", "fashion-28", args.kimg,
                    seed, sets, eval_args=EVAL) for seed in seeds]
        results = [run_row(row, args.out, root, args.threads) for row in made]
        if args.progress_every:
            over_the_run[f"{percent}% {augment}"] = progress(made[0], args.out, root, args.threads,
                                                              args.progress_every)
        return results

    def fd(runs: list[dict]) -> float:
        return statistics.mean(r["metrics"]["fd-classifier"] for r in runs)

    full = rows("100", "none")
    print(f"\nFashion-MNIST, fashion-28 preset, {args.kimg:g} kimg per run; FD-classifier of the final snapshot "
          f"(10,000 generated vs the 10,000 test images); {len(seeds)} seed(s), mean ± std\n")
    print("| training data | augment | FD-classifier | gap to full data recovered | training time |")
    print("|---|---|---|---|---|")
    print(f"| 100% (60,000) | none | {mean_std([r['metrics']['fd-classifier'] for r in full], 2)} | | "
          f"{minutes(statistics.mean(r['train_wall_s'] for r in full))} |")
    for percent in fractions:
        baseline = None
        for augment in augments:
            runs = rows(percent, augment)
            value = fd(runs)
            if augment == "none":
                baseline = value
            gap = ""
            if augment == "none":
                gap = f"(the gap: {value - fd(full):+.2f})"
            elif baseline is not None and baseline - fd(full) > GAP_NOISE:
                gap = f"{100 * (baseline - value) / (baseline - fd(full)):.0f}%"
            elif baseline is not None:  # no gap to recover: a share of it would be noise divided by noise
                gap = f"no gap at this budget ({value - baseline:+.2f} against none)"
            print(f"| {percent}% ({600 * int(percent):,}) | {augment} | "
                  f"{mean_std([r['metrics']['fd-classifier'] for r in runs], 2)} | {gap} | "
                  f"{minutes(statistics.mean(r['train_wall_s'] for r in runs))} |")
    if over_the_run:
        print(f"\nFD-classifier over the run (seed {seeds[0]}; same evaluation as the final rows)\n")
        names = list(over_the_run)
        print("| kimg | " + " | ".join(names) + " |")
        print("|---|" + "---|" * len(names))
        for i, point in enumerate(over_the_run[names[0]]):
            cells = [f"{over_the_run[n][i]['metrics']['fd-classifier']:.2f}" if i < len(over_the_run[n]) else ""
                     for n in names]
            print(f"| {point['kimg']:.0f} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
