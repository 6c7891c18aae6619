"""Which training recipe? The candidates for the quality anchors, one ``deconvgan sweep`` of named variants.

    python benchmarks/recipes.py [--preset mnist-28] [--set KEY=VALUE ...] [--kimg 100] [--seeds 0]
                                 [--variants base,hinge-sn,...] [--metric fd-classifier] [--name NAME]
                                 [--run] [--jobs 1] [--speed-steps 40] [--picture docs/recipes-mnist.png]

Every variant changes the preset in one respect (``--variant NAME KEY=VALUE ...``): learning-rate
decay, hinge loss with spectral norm in D, R1 (every step and lazy), two time-scale rates, a wider D,
wider networks, a larger batch, PacGAN packing, minibatch stddev, resize-convolution, pixel shuffle,
kernel size 5 (the kernel x depth sweep's best on MNIST). Each trains the
same number of images with the FD-classifier logged every 20 kimg; the table gives the final
FD-classifier (10,000 generated vs the 10,000 test images) with training images/s timed apart, and
the plot the FD-classifier against kimg and against training minutes: which recipe is ahead for the
same compute. With ``--run`` it starts the sweep (``sweeps/NNNNN-recipes-<preset>``, or ``--name``) or
continues it. ``--set`` changes the base of every variant (``model.g_depth=2`` for the deep presets'
depth), ``--variants`` runs some of them, and ``--metric mode-coverage`` scores Stacked MNIST (modes,
KL and the classifier's confidence; the best KL is marked).
"""

from __future__ import annotations

import argparse

from _runs import add_data_root_argument, choices, data_root
from _sweeps import add_sweep_arguments, sweep_benchmark

VARIANTS = [  # name, overrides
    ("base",),
    ("lr-decay", "train.lr_decay=linear"),
    ("hinge-sn", "loss.kind=hinge", "model.d_norm=spectral"),
    ("r1", "loss.r1_gamma=1"),
    ("r1-lazy", "loss.r1_gamma=1", "loss.r1_every=16"),
    ("ttur", "train.g_lr=0.0005"),
    ("wide-d", "model.d_width=128"),
    ("wide", "model.g_width=128", "model.d_width=128"),
    ("batch-128", "train.batch_size=128"),
    ("pack-2", "model.d_pack=2"),
    ("mbstd-4", "model.d_mbstd=4"),
    ("resize", "model.upsample=resize"),
    ("pixelshuffle", "model.upsample=pixelshuffle"),
    ("kernel-5", "model.kernel_size=5"),
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="mnist-28")
    parser.add_argument("--kimg", default="100")
    parser.add_argument("--seeds", default="0")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="a config override for every variant (repeatable)")
    parser.add_argument("--variants", default=",".join(v[0] for v in VARIANTS),
                        help="comma-separated, of " + ", ".join(v[0] for v in VARIANTS))
    parser.add_argument("--metric", default="fd-classifier", choices=("fd-classifier", "mode-coverage"),
                        help="what scores each run (logged every 20 kimg and on the final snapshot)")
    parser.add_argument("--name", help="the sweep's name (default recipes-PRESET)")
    add_sweep_arguments(parser, "recipes-PRESET")
    add_data_root_argument(parser)
    args = parser.parse_args()
    root = data_root(args.data_root)
    name = args.name or f"recipes-{args.preset}"
    variants = {v[0]: v for v in VARIANTS}
    picked = choices(parser, "--variants", args.variants, variants)
    sweep_args = [args.preset, "--seeds", args.seeds, "--kimg", args.kimg, "--metrics", args.metric,
                  "--set", f"run.metric={args.metric}", "--set", "run.metric_every_kimg=20"]
    for override in args.set:
        sweep_args += ["--set", override]
    for variant in picked:
        sweep_args += ["--variant", *variants[variant]]
    sweep_benchmark(name, sweep_args, args, root)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
