"""Time to quality on MNIST-28: deconvgan's default recipe vs the pytorch/examples DCGAN recipe, same run.

    python benchmarks/time_to_quality.py [--threshold 20] [--chunk-kimg 16] [--max-kimg 224] [--ablation]
                                         [--threads 2] [--samples 10000] [--data-root ../shared/data]

Both train on the 60,000 MNIST training images at 28x28, alternating chunks of ``--chunk-kimg``
(A B A B, so a busy host slows both alike) until each reaches the FD-classifier ``--threshold``
(Fréchet distance of 10,000 samples to the 10,000 test images in the tool's MNIST classifier
features) or ``--max-kimg``. Only training time counts; evaluation runs with the clocks stopped.

- deconvgan: the ``mnist-28`` preset as a user runs it (non-saturating loss on logits, moving
  average of G, no D weight gradients in the G step), driven through ``train(..., until_step,
  resume)``, so every chunk also pays for starting up, writing its training state and snapshot,
  re-estimating batch-norm statistics and drawing a sample grid. Evaluated is the snapshot a user
  gets.
- reference: :class:`_reference.ReferenceDCGAN` on the identical architecture and batch (64). It
  never switches to eval mode (its samples are drawn in train mode); it is evaluated both ways
  and credited with the better one.
- ``--ablation`` adds three runs of deconvgan's loop that undo the preset's recipe one piece at a
  time: no moving average of G (samples from G itself), the DCGAN paper's learning rate 2e-4 with
  the moving average, and both (the reference's recipe in deconvgan's loop). Where the gain over
  the reference comes from is then read off the kimg each needs (the same seed, so the same data
  order and latents).
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import io
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # spinning OpenMP threads collapse on a squeezed host

import torch  # noqa: E402
from _reference import LATENT_DIM, SETUPS, ReferenceDCGAN  # noqa: E402
from _runs import add_data_root_argument, data_root  # noqa: E402

from deconvgan.checkpoint import load_snapshot  # noqa: E402
from deconvgan.config import DataConfig  # noqa: E402
from deconvgan.configio import load_config  # noqa: E402
from deconvgan.data import load_dataset  # noqa: E402
from deconvgan.images import to_uint8  # noqa: E402
from deconvgan.metrics.evaluate import EvalContext, load_real_images  # noqa: E402
from deconvgan.runfiles import SNAPSHOT_FILE  # noqa: E402
from deconvgan.sampling import generate, latents_for_seeds  # noqa: E402
from deconvgan.training import train  # noqa: E402

RECIPES = {  # name -> (label, overrides of the mnist-28 preset; the reference is its own code)
    "deconvgan": ("deconvgan mnist-28 preset (lr 1e-3, moving average)", []),
    "reference": ("pytorch/examples DCGAN (lr 2e-4, no moving average)", []),
    "no-ema": ("deconvgan, lr 1e-3, no moving average", ["train.ema_halflife_kimg=null"]),
    "lr-2e-4": ("deconvgan, lr 2e-4, moving average", ["train.g_lr=2e-4", "train.d_lr=2e-4"]),
    "lr-2e-4-no-ema": ("deconvgan, lr 2e-4, no moving average",
                       ["train.g_lr=2e-4", "train.d_lr=2e-4", "train.ema_halflife_kimg=null"]),
}


def fd_classifier_of(root: str, samples: int):
    """uint8 images -> their FD-classifier against the first ``samples`` MNIST test images (computed once)."""
    cfg = load_config("mnist-28")
    real, real_cfg, name = load_real_images(DataConfig(source="mnist", root=root, split="test"), cfg.model, samples)
    ctx = EvalContext(real=real, fake=real[:0], data_cfg=real_cfg, real_name=name, model=cfg.model,
                      num_generated=samples, progress=False)
    return lambda images: ctx.score(images, ["fd-classifier"])["fd-classifier"]


@torch.inference_mode()
def reference_images(G: torch.nn.Module, samples: int, train_mode: bool) -> torch.Tensor:
    """uint8 samples of the reference G for seeds 0..samples-1, in eval mode or (a copy) in train mode."""
    G = copy.deepcopy(G).train(train_mode)  # train mode: batch statistics of each 64-sample batch
    z = latents_for_seeds(list(range(samples)), LATENT_DIM)
    return torch.cat([to_uint8(G(chunk.view(-1, LATENT_DIM, 1, 1))) for chunk in z.split(64)])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threshold", type=float, default=20.0, help="FD-classifier to reach")
    parser.add_argument("--chunk-kimg", type=float, default=16.0, help="training between evaluations")
    parser.add_argument("--max-kimg", type=float, default=224.0, help="give up after this many images")
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's choice)")
    parser.add_argument("--samples", type=int, default=10_000, help="generated and test images per evaluation")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--ablation", action="store_true", help="also run the preset without the moving "
                        "average, at lr 2e-4, and with both (deconvgan's loop)")
    add_data_root_argument(parser)
    args = parser.parse_args()
    root = data_root(args.data_root)
    if args.threads:
        torch.set_num_threads(args.threads)
    setup = SETUPS["mnist28"]
    chunk_steps = round(args.chunk_kimg * 1000 / setup.batch)
    max_steps = round(args.max_kimg * 1000 / setup.batch)
    train_images = load_dataset(DataConfig(source="mnist", root=root), 28, 1)
    fd = fd_classifier_of(root, args.samples)

    tmp = tempfile.TemporaryDirectory()
    reference = ReferenceDCGAN(setup, train_images.images, seed=args.seed)

    def deconvgan_chunk(name: str, overrides: list[str]):
        """A function that trains deconvgan's ``name`` run up to ``step`` -> (seconds, FD-classifier, as shown)."""
        run_dir = Path(tmp.name) / name
        cfg = load_config("mnist-28", [
            f"train.seed={args.seed}", f"train.phases=[{{steps: {max_steps}}}]", f"data.root={root}",
            "run.progress=false", "run.tensorboard=false", *overrides])

        def chunk(step: int) -> tuple[float, float, str]:
            start = time.perf_counter()
            with contextlib.redirect_stdout(io.StringIO()):  # its "starting ..." / "stopped ..." lines
                train(cfg, run_dir=run_dir, resume=run_dir if step > chunk_steps else None, until_step=step,
                      dataset=train_images)
            seconds = time.perf_counter() - start
            generator, _ = load_snapshot(run_dir / SNAPSHOT_FILE, "cpu")
            value = fd(generate(generator, latents_for_seeds(list(range(args.samples)), LATENT_DIM)))
            return seconds, value, f"{value:.3f}"
        return chunk

    def reference_chunk(step: int) -> tuple[float, float, str]:
        seconds = reference.train_steps(step - reference.steps_done)
        eval_fd = fd(reference_images(reference.G, args.samples, train_mode=False))
        train_fd = fd(reference_images(reference.G, args.samples, train_mode=True))
        return seconds, min(eval_fd, train_fd), f"{eval_fd:.3f} / {train_fd:.3f}"

    recipes = {name: spec for name, spec in RECIPES.items() if args.ablation or name in ("deconvgan", "reference")}
    chunks = {name: reference_chunk if name == "reference" else deconvgan_chunk(name, spec[1])
              for name, spec in recipes.items()}
    curves: dict[str, list[tuple[float, float, float]]] = {name: [] for name in chunks}  # (kimg, seconds, FD)

    def reached(name: str) -> tuple[float, float] | None:
        """(kimg, training seconds) of the first evaluation at or under the threshold."""
        return next(((kimg, s) for kimg, s, value in curves[name] if value <= args.threshold), None)

    step = 0
    print("| kimg | " + " | ".join(f"{name}: training s | FD-classifier"
                                  + (" (eval / train mode)" if name == "reference" else "") for name in chunks) + " |")
    print("|---|" + "---|---|" * len(chunks))
    while step < max_steps and not all(reached(name) for name in chunks):
        step = min(step + chunk_steps, max_steps)
        kimg = step * setup.batch / 1000
        row = [f"{kimg:g}"]
        for name, chunk in chunks.items():
            if reached(name):
                row += ["", ""]
                continue
            seconds, value, shown = chunk(step)
            clock = (curves[name][-1][1] if curves[name] else 0.0) + seconds
            curves[name].append((kimg, clock, value))
            row += [f"{clock:.0f}", shown]
        print("| " + " | ".join(row) + " |", flush=True)
    tmp.cleanup()

    print(f"\nFD-classifier threshold {args.threshold} ({args.samples} samples vs MNIST test), "
          f"{torch.get_num_threads()} thread(s), chunks of {args.chunk_kimg:g} kimg\n")
    print("| recipe | reached at | training time | best FD-classifier seen |")
    print("|---|---|---|---|")
    for name, (label, _) in recipes.items():
        best = min(value for _, _, value in curves[name])
        hit = reached(name)
        where = f"{hit[0]:g} kimg" if hit else f"not within {args.max_kimg:g} kimg"
        when = f"{hit[1]:.0f} s" if hit else f"> {curves[name][-1][1]:.0f} s"
        print(f"| {label} | {where} | {when} | {best:.3f} |")
    ours, theirs = reached("deconvgan"), reached("reference")
    if ours and theirs:
        print(f"\ndeconvgan reaches it {theirs[1] / ours[1]:.1f}x sooner")
        at = next((s for k, s, _ in curves["reference"] if k == ours[0]), None)  # the reference at that kimg
        if at is not None:
            print(f"per image: the first {ours[0]:g} kimg took deconvgan {ours[1]:.0f} s and the reference "
                  f"{at:.0f} s ({at / ours[1]:.2f}x)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
