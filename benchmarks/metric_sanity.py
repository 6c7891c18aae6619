"""The metric figures the README quotes, measured with the tool's own code: classifier, Stacked MNIST, spectra, speed.

    python benchmarks/metric_sanity.py [--threads 1] [--seeds 20] [--data-root ../shared/data] [--cache-dir DIR]

Four tables, each computed by the functions ``deconvgan evaluate`` uses:

1. **The domain classifier** (``metrics/classifier.py``) of MNIST and Fashion-MNIST, as the tool
   loads or trains it (from its cache, the same entry ``evaluate`` uses): its accuracy on the 10,000
   test images, and how long training it once took.
2. **Real Stacked MNIST** (``metrics/mode_coverage.py``): modes hit and KL(modes || uniform) of
   26,000 real stacked images, once with the tool's MNIST classifier on each channel (what
   ``--metrics mode-coverage`` does to generated images) and once with the true digit labels, for
   triples drawn from the test digits (which the classifier never saw) and from the training digits.
3. **Untrained generators' periodic peaks** (``metrics/spectral.py``): the period-2 peak ratio of 64
   images from a freshly initialised generator, for ``--seeds`` seeds, per upsampler, at 32 px (the
   default DCGAN at 32x32) and at 28 px (the ``mnist-28`` model); the real MNIST test images' ratio beside.
4. **FD-classifier evaluation time**: ``evaluate(..., metrics=["fd-classifier"])`` on 10,000
   generated and 10,000 test images, with the real features computed (first evaluation against a
   split) and read from the cache (every later one, e.g. during training); plus its parts.

Speed figures depend on the host: run it on a quiet machine, with ``--threads 1`` for a figure that
other processes disturb least. The classifier is trained (a few minutes) only when it is not cached yet.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # spinning OpenMP threads collapse on a squeezed host

import torch  # noqa: E402
from _runs import add_data_root_argument, data_root  # noqa: E402

from deconvgan.checkpoint import save_snapshot  # noqa: E402
from deconvgan.config import DataConfig, ModelConfig  # noqa: E402
from deconvgan.data import load_dataset  # noqa: E402
from deconvgan.metrics.cache import cache_root  # noqa: E402
from deconvgan.metrics.classifier import domain_classifier  # noqa: E402
from deconvgan.metrics.evaluate import evaluate  # noqa: E402
from deconvgan.metrics.mode_coverage import (  # noqa: E402
    DEFAULT_SAMPLES,
    kl_to_uniform,
    mode_coverage,
    mode_histogram,
    stacked_modes,
)
from deconvgan.metrics.spectral import periodic_energy  # noqa: E402
from deconvgan.models import build_generator  # noqa: E402
from deconvgan.runfiles import SNAPSHOT_FILE  # noqa: E402
from deconvgan.sampling import generate, latents_for_seeds  # noqa: E402

UPSAMPLERS = ("transposed", "resize", "pixelshuffle")


def classifier_table(root: str, folder: Path) -> dict:
    """Accuracy of the tool's MNIST and Fashion-MNIST classifiers on their test splits; returns the MNIST one."""
    print("## 1. The domain classifier (FD-classifier features; mode coverage on each Stacked MNIST channel)\n")
    print("| dataset | test accuracy | errors of 10,000 | training time (once; then cached) | this run |")
    print("|---|---|---|---|---|")
    found = {}
    for source in ("mnist", "fashion-mnist"):
        before = set(folder.glob("*.safetensors")) if folder.is_dir() else set()
        classifier = domain_classifier(DataConfig(source=source, root=root, download=False), 28, 1,
                                       cache_dir=folder, progress=False)
        trained_now = set(folder.glob("*.safetensors")) != before
        test = load_dataset(DataConfig(source=source, root=root, split="test", download=False), 28, 1)
        accuracy = classifier.accuracy(test.images, test.labels)
        errors = round((1 - accuracy) * len(test.images))
        print(f"| {source} | {100 * accuracy:.2f}% | {errors} | {classifier.meta['train_seconds']:.0f} s "
              f"| {'trained' if trained_now else 'read from the cache'} |", flush=True)
        found[source] = classifier
    print(f"\n(cache: {folder})\n")
    return found["mnist"]


def stacked_table(root: str, digits) -> None:
    """Mode coverage and KL of real Stacked MNIST: the tool's classifier against the true labels."""
    n = DEFAULT_SAMPLES
    print(f"## 2. Real Stacked MNIST, {n:,} images: modes (of 1000) and KL(modes || uniform)\n")
    print("| digits drawn from | classifier | modes | KL | triples classified right |")
    print("|---|---|---|---|---|")
    for split in ("test", "train"):
        real = load_dataset(DataConfig(source="stacked-mnist", root=root, split=split, download=False,
                                       stacked_count=n), 28, 3)
        ours = mode_coverage(real.images, digits)
        truth = mode_histogram(real.labels)
        right = float((stacked_modes(real.images, digits) == real.labels).double().mean())
        print(f"| MNIST {split} | the tool's MNIST classifier | {ours.modes} | {ours.kl:.4f} | {100 * right:.2f}% |")
        print(f"| MNIST {split} | true labels | {int((truth > 0).sum())} | {kl_to_uniform(truth):.4f} | 100% |",
              flush=True)
    print(f"\nSampling noise alone gives E[KL] ~ (1000 - 1) / (2 x {n}) = {999 / (2 * n):.4f}.\n")


def periodic_table(root: str, seeds: int) -> None:
    """Period-2 peak ratios of untrained generators over ``seeds`` seeds, per upsampler and size."""
    print(f"## 3. Untrained generators: period-2 peak ratio (1.0 = no peak), 64 images each, seeds 0..{seeds - 1}\n")
    print("| model | upsampler | min | median | max | real MNIST test images |")
    print("|---|---|---|---|---|---|")
    real = load_dataset(DataConfig(source="mnist", root=root, split="test", download=False), 28, 1).images
    real_ratio = periodic_energy(real)[2]
    for resolution, label in ((32, "DCGAN 32x32 (defaults)"), (28, "mnist-28 model")):
        per_seed: dict[str, list[float]] = {}
        for upsample in UPSAMPLERS:
            ratios = []
            for seed in range(seeds):
                torch.manual_seed(seed)  # the initial weights (DCGAN init; ICNR for pixel shuffle)
                generator = build_generator(ModelConfig(resolution=resolution, upsample=upsample)).eval()
                z = torch.randn(64, generator.latent_dim, generator=torch.Generator().manual_seed(seed))
                with torch.no_grad():
                    ratios.append(periodic_energy(generator(z))[2])
            per_seed[upsample] = ratios
            print(f"| {label} | {upsample} | {min(ratios):.3g} | {statistics.median(ratios):.3g} | "
                  f"{max(ratios):.3g} | {f'{real_ratio:.2f}' if resolution == 28 else ''} |", flush=True)
        gap = min(t / r for t, r in zip(per_seed["transposed"], per_seed["resize"], strict=True))
        print(f"| {label} | transposed / resize, same seed | {gap:.1f} (min) | | | |")
    print()


def fd_classifier_time(root: str, folder: Path, samples: int) -> None:
    """Wall time of ``evaluate`` with fd-classifier on ``samples`` generated and test images, cold and warm."""
    print(f"## 4. FD-classifier evaluation time: {samples:,} generated vs {samples:,} MNIST test images, "
          f"{torch.get_num_threads()} thread(s)\n")
    with tempfile.TemporaryDirectory() as tmp:
        cache = Path(tmp) / "cache"
        cache.mkdir()
        (cache / "classifiers").symlink_to(folder.resolve(), target_is_directory=True)  # trained once, above
        model = ModelConfig(resolution=28)  # the mnist-28 generator; speed does not depend on its weights
        torch.manual_seed(0)
        generator = build_generator(model)
        snapshot = Path(tmp) / SNAPSHOT_FILE
        save_snapshot(snapshot, generator, model, dataset="mnist-train")
        data = DataConfig(source="mnist", root=root, split="test", download=False)

        def timed_evaluate() -> tuple[float, float]:
            start = time.perf_counter()
            value = evaluate(snapshot, data, metrics=["fd-classifier"], num_generated=samples, num_real=samples,
                             device="cpu", cache_dir=cache, progress=False)["fd-classifier"]
            return time.perf_counter() - start, value

        cold, _ = timed_evaluate()
        warm, _ = timed_evaluate()
        start = time.perf_counter()
        fake = generate(generator, latents_for_seeds(list(range(samples)), model.latent_dim))
        generation = time.perf_counter() - start
        classifier = domain_classifier(DataConfig(source="mnist", root=root, download=False), 28, 1,
                                       cache_dir=folder, progress=False)
        start = time.perf_counter()
        classifier.features(fake)
        features = time.perf_counter() - start
    print("| what | seconds |")
    print("|---|---|")
    print(f"| `evaluate`, real features computed (first evaluation against the split) | {cold:.1f} |")
    print(f"| `evaluate`, real features from the cache (every later evaluation) | {warm:.1f} |")
    print(f"| of which: generating the {samples:,} images | {generation:.1f} |")
    print(f"| of which: classifier features of the {samples:,} images | {features:.1f} |")
    print()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--seeds", type=int, default=20, help="seeds of the untrained generators")
    parser.add_argument("--samples", type=int, default=10_000, help="images per side of the FD-classifier timing")
    add_data_root_argument(parser)
    parser.add_argument("--cache-dir", help="cache root (default $DECONVGAN_CACHE or ~/.cache/deconvgan: the "
                        "classifier deconvgan evaluate uses)")
    args = parser.parse_args()
    root = data_root(args.data_root)
    torch.set_num_threads(args.threads)
    folder = cache_root(args.cache_dir) / "classifiers"
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), {os.cpu_count()} CPUs\n")
    digits = classifier_table(root, folder)
    stacked_table(root, digits)
    periodic_table(root, args.seeds)
    fd_classifier_time(root, folder, args.samples)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
