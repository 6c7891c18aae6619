"""Class-conditional MNIST and Fashion-MNIST: class accuracy and FD, beside the unconditional preset.

    python benchmarks/conditional.py --threads 1                      # the README table
    python benchmarks/conditional.py --datasets mnist --seeds 0,1,2 --kimg 100

Each row trains the ``mnist-28`` / ``fashion-28`` preset for the same budget, unconditional and with
``model.num_classes=10`` (conditional batch norm in G, a projection discriminator), and evaluates the
final snapshot on 10,000 generated images (seed s drawn in class s mod 10, so 1,000 per class) against
the 10,000 test images: FD-classifier overall, and for the conditional model the class accuracy (the
share of samples the tool's classifier assigns to the class they were drawn for) and the Fréchet
distance class by class (1,000 generated vs the ~1,000 test images of that class, so it carries more
small-sample bias than the overall figure). Finished rows are kept and not rerun.
"""

from __future__ import annotations

import argparse

from _runs import Row, add_run_arguments, choices, data_root, mean_std, minutes, run_row

DATASETS = {"mnist": ("mnist-28", "MNIST", 0.98), "fashion": ("fashion-28", "Fashion-MNIST", 0.90)}
EVAL = ("--num-generated", "10000", "--num-real", "10000")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default="mnist,fashion", help=f"comma-separated, of {', '.join(DATASETS)}")
    parser.add_argument("--seeds", default="0")
    parser.add_argument("--kimg", type=float, default=100.0, help="training images per run, in thousands")
    add_run_arguments(parser, "runs/bench-conditional")
    args = parser.parse_args()
    root = data_root(args.data_root)
    names = choices(parser, "--datasets", args.datasets, DATASETS)
    seeds = [int(s) for s in args.seeds.split(",")]

    results: dict[tuple[str, bool], list[dict]] = {}
    for name in names:
        preset = DATASETS[name][0]
        for conditional in (False, True):
            for seed in seeds:
                kind = "cond" if conditional else "uncond"
                row = Row(f"{name}-{kind}-{args.kimg:g}kimg-seed{seed}", preset, args.kimg, seed,
                          sets=("model.num_classes=10",) if conditional else (),
                          metrics=("fd-classifier", "class-accuracy", "class-fd") if conditional
                          else ("fd-classifier",), eval_args=EVAL)
                results.setdefault((name, conditional), []).append(run_row(row, args.out, root, args.threads))

    print(f"\n{args.kimg:g} kimg per run, final snapshots; 10,000 generated vs the 10,000 test images; "
          f"{len(seeds)} seed(s), mean ± std\n")
    print("| dataset | generator | class accuracy (target) | FD-classifier | per-class FD: mean | per-class FD: worst "
          "| training time |")
    print("|---|---|---|---|---|---|---|")
    for name in names:
        label, target = DATASETS[name][1:]
        for conditional in (False, True):
            runs = results[(name, conditional)]

            def cell(key: str, digits: int = 2, scale: float = 1.0, runs: list[dict] = runs) -> str:
                return mean_std([scale * r["metrics"][key] for r in runs], digits)

            time_s = sum(r["train_wall_s"] for r in runs) / len(runs)
            if conditional:
                print(f"| {label} | conditional (10 classes) | {cell('class-accuracy', 2, 100)}% (≥ {100 * target:g}%) "
                      f"| {cell('fd-classifier')} | {cell('class-fd-mean')} | {cell('class-fd-max')} "
                      f"| {minutes(time_s)} |")
            else:
                print(f"| {label} | unconditional | | {cell('fd-classifier')} | | | {minutes(time_s)} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
