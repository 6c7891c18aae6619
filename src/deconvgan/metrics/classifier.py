"""The "domain" feature extractor: a small CNN trained by the tool on the labelled dataset itself.

Inception features describe ImageNet photos; for 28x28 digits a classifier of the digits
themselves is both more meaningful and ~1000x cheaper. The recipe is fixed (:class:`ClassifierRecipe`,
versioned): three conv-BN-ReLU blocks, a 128-d penultimate layer, Adam with a cosine-decayed
rate, seeded shuffling and initialisation, no dropout. The trained weights are cached as
safetensors + JSON under a hash of (dataset, resolution, channels, recipe, data checksum), so the
training runs once per machine. Its penultimate features give the fast "FD-classifier".

Training is deterministic for a given machine and thread count (CPU kernels may sum in a
different order with a different number of threads, which changes the last bits).
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
from torch import nn
from tqdm import tqdm

from deconvgan import __version__
from deconvgan.atomic import write_text, write_with
from deconvgan.config import DataConfig
from deconvgan.data import ImageDataset, load_dataset
from deconvgan.data.stacked import mode_of_digits
from deconvgan.errors import DataError
from deconvgan.metrics.cache import CacheWarning, cache_key, cache_root, safe_stem, tensor_checksum

RECIPE_VERSION = 1  # bump whenever the architecture or the training procedure changes
CLASSIFIER_FORMAT = "deconvgan-domain-classifier"


@dataclass(frozen=True)
class ClassifierRecipe:
    """The fixed training recipe; every field is part of the cache key."""

    epochs: int = 2  # MNIST: 99.4% test accuracy (1 epoch: 99.25%, too close to the 99% bar)
    batch_size: int = 128
    lr: float = 2e-3
    weight_decay: float = 0.0
    width: int = 32  # channels of the first block; doubles per block
    feature_dim: int = 128  # penultimate layer: the FD-classifier feature space
    seed: int = 0
    max_steps: int | None = None  # stop early (tests); None trains all epochs
    version: int = RECIPE_VERSION


class SmallCNN(nn.Module):
    """conv-BN-ReLU x3 with 2x max-pooling, to a fixed 3x3 grid, then a 128-d feature layer and logits."""

    def __init__(self, channels: int, num_classes: int, width: int = 32, feature_dim: int = 128) -> None:
        super().__init__()

        def block(c_in: int, c_out: int) -> list[nn.Module]:
            return [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(), nn.MaxPool2d(2)]

        self.body = nn.Sequential(
            *block(channels, width), *block(width, 2 * width), *block(2 * width, 4 * width),
            nn.AdaptiveAvgPool2d(3),  # any resolution -> [N, 4w, 3, 3] (28 px: 3x3 already, a no-op)
            nn.Flatten(),
            nn.Linear(4 * width * 9, feature_dim, bias=False), nn.BatchNorm1d(feature_dim), nn.ReLU(),
        )
        self.head = nn.Linear(feature_dim, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """[N, C, H, W] in [-1, 1] -> penultimate features [N, feature_dim]."""
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


def _normalise(images: torch.Tensor) -> torch.Tensor:
    return images.float().div(127.5).sub(1)  # uint8 0..255 -> [-1, 1], as the generators produce


def train_classifier(dataset: ImageDataset, recipe: ClassifierRecipe = ClassifierRecipe(), *,
                     device: str | torch.device = "cpu", progress: bool = True) -> SmallCNN:
    """Train :class:`SmallCNN` on ``dataset`` (uint8 images with labels) with ``recipe``; eval mode."""
    if dataset.labels is None or dataset.num_classes is None:
        raise DataError(f"{dataset.name}: the domain classifier needs labelled images; use the inception extractor")
    device = torch.device(device)
    with torch.random.fork_rng(devices=[]):  # seeded init without touching the caller's global RNG
        torch.manual_seed(recipe.seed)
        model = SmallCNN(dataset.images.shape[1], dataset.num_classes, recipe.width, recipe.feature_dim)
    model = model.to(device).train()
    opt = torch.optim.Adam(model.parameters(), lr=recipe.lr, weight_decay=recipe.weight_decay)
    gen = torch.Generator().manual_seed(recipe.seed)
    n = len(dataset)
    per_epoch = max(1, n // recipe.batch_size)  # drop the last partial batch: BN wants full batches
    total = per_epoch * recipe.epochs if recipe.max_steps is None else min(recipe.max_steps, per_epoch * recipe.epochs)
    bar = tqdm(total=total, desc=f"classifier {dataset.name}", leave=False, disable=not progress)
    step = 0
    while step < total:
        order = torch.randperm(n, generator=gen)
        for i in range(per_epoch):
            if step >= total:
                break
            for group in opt.param_groups:  # cosine decay to zero over the whole run
                group["lr"] = recipe.lr * 0.5 * (1 + math.cos(math.pi * step / total))
            index = order[i * recipe.batch_size:(i + 1) * recipe.batch_size]
            x = _normalise(dataset.images[index]).to(device)
            y = dataset.labels[index].to(device)
            loss = F.cross_entropy(model(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
            bar.update(1)
    bar.close()
    return model.eval()


class DomainClassifier:
    """A trained :class:`SmallCNN` as a feature extractor (``features``/``__call__``) and classifier (``predict``)."""

    def __init__(self, model: SmallCNN, meta: dict[str, Any], *, device: str | torch.device = "cpu",
                 batch_size: int = 512) -> None:
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        self.meta = meta
        self.batch_size = batch_size
        self.name = f"classifier-{meta['key']}"  # names the weights exactly: cached real features key on it
        self.version = meta["recipe"]["version"]
        self.dim = meta["recipe"]["feature_dim"]

    @torch.inference_mode()
    def _run(self, images: torch.Tensor, output: str) -> torch.Tensor:
        """``output``: "features" [N, D], "labels" [N] or "probabilities" [N, K] (softmax of the head)."""
        if images.dtype != torch.uint8 or images.dim() != 4:
            raise ValueError(f"expected uint8 [N, C, H, W], got {images.dtype} {tuple(images.shape)}")
        if images.shape[0] == 0:
            width = self.dim if output == "features" else self.model.head.out_features
            return torch.empty(0, dtype=torch.long) if output == "labels" else torch.empty(0, width)
        outs = []
        for part in images.split(self.batch_size):
            feats = self.model.features(_normalise(part).to(self.device))  # [b, D]
            if output == "features":
                outs.append(feats.float().cpu())
            else:
                logits = self.model.head(feats).float()  # [b, K]
                outs.append((logits.argmax(1) if output == "labels" else logits.softmax(1)).cpu())
        return torch.cat(outs)

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 [N, C, H, W] -> float32 penultimate features [N, feature_dim]."""
        return self._run(images, "features")

    __call__ = features

    def predict(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 [N, C, H, W] -> int64 predicted labels [N]."""
        return self._run(images, "labels").long()

    def probabilities(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 [N, C, H, W] -> float32 class probabilities [N, K] (softmax; rows sum to 1)."""
        return self._run(images, "probabilities")

    def accuracy(self, images: torch.Tensor, labels: torch.Tensor) -> float:
        """Fraction of ``images`` whose predicted label equals ``labels``."""
        return float((self.predict(images) == labels.cpu()).double().mean())


def _paths(folder: Path, dataset: ImageDataset, key: str) -> tuple[Path, Path]:
    _, c, h, _ = dataset.images.shape
    stem = safe_stem(f"{dataset.name}-{h}px-{c}ch-{key}")
    return folder / f"{stem}.safetensors", folder / f"{stem}.json"


def _load(path: Path, meta_path: Path, key: str, device: str | torch.device) -> DomainClassifier | None:
    if not (path.is_file() and meta_path.is_file()):
        return None
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        if meta.get("format") != CLASSIFIER_FORMAT or meta.get("key") != key:
            raise ValueError("metadata does not match the requested key")
        with safe_open(str(path), framework="pt", device="cpu") as f:
            state = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 - safe_open has no items()
        recipe = meta["recipe"]
        model = SmallCNN(meta["channels"], meta["num_classes"], recipe["width"], recipe["feature_dim"])
        model.load_state_dict(state)  # strict: a missing or extra tensor is an error
    except (OSError, ValueError, KeyError, TypeError, RuntimeError, SafetensorError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        warnings.warn(f"{path}: unusable cached classifier ({reason}); retraining", CacheWarning, stacklevel=3)
        return None
    return DomainClassifier(model, meta, device=device)


def load_or_train(dataset: ImageDataset, recipe: ClassifierRecipe = ClassifierRecipe(), *,
                  cache_dir: str | Path | None = None, device: str | torch.device = "cpu",
                  progress: bool = True) -> DomainClassifier:
    """The classifier of ``dataset`` (its training images), from the cache or trained now and cached.

    ``cache_dir`` defaults to ``<cache root>/classifiers`` ($DECONVGAN_CACHE or ~/.cache/deconvgan).
    """
    if dataset.labels is None or dataset.num_classes is None:
        raise DataError(f"{dataset.name}: the domain classifier needs labelled images; use the inception extractor")
    _, c, h, _ = dataset.images.shape
    fields = {"dataset": dataset.name, "resolution": h, "channels": c, "recipe": dataclasses.asdict(recipe),
              "data_sha256": tensor_checksum(dataset.images, dataset.labels)}
    key = cache_key(fields)
    folder = Path(cache_dir).expanduser() if cache_dir is not None else cache_root() / "classifiers"
    path, meta_path = _paths(folder, dataset, key)
    found = _load(path, meta_path, key, device)
    if found is not None:
        return found
    start = time.perf_counter()
    model = train_classifier(dataset, recipe, device=device, progress=progress).cpu()
    meta = {"format": CLASSIFIER_FORMAT, "package_version": __version__, "key": key, **fields,
            "num_classes": dataset.num_classes, "train_seconds": round(time.perf_counter() - start, 1)}
    state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    write_with(path, lambda tmp: save_file(state, str(tmp), metadata={"key": key}))
    write_text(meta_path, json.dumps(meta, indent=2) + "\n")  # last: the entry exists once both do
    return DomainClassifier(model, meta, device=device)


def stacked_channels(images: torch.Tensor) -> torch.Tensor:
    """Stacked MNIST uint8 [N, 3, H, W] -> its channels as single digits [3N, 1, H, W], channel-major within
    each image (rows r, g, b, r, g, b, ...)."""
    if images.dim() != 4 or images.shape[1] != 3:
        raise ValueError(f"Stacked MNIST images are [N, 3, H, W], got {tuple(images.shape)}")
    n, _, h, w = images.shape
    return images.reshape(n * 3, 1, h, w)


class StackedDigitClassifier:
    """Stacked MNIST through the MNIST digit classifier applied to each channel.

    ``features``: the three channels' features side by side [N, 3 * D]; ``predict``: the mode
    ``100 * red + 10 * green + blue`` [N] (0..999).
    """

    def __init__(self, digits: DomainClassifier) -> None:
        self.digits = digits
        self.name = f"stacked-{digits.name}"
        self.version = digits.version
        self.dim = 3 * digits.dim

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 [N, 3, H, W] -> float32 [N, 3 * D]."""
        return self.digits.features(stacked_channels(images)).reshape(images.shape[0], self.dim)

    __call__ = features

    def predict(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 [N, 3, H, W] -> int64 modes [N] in 0..999."""
        return mode_of_digits(self.digits.predict(stacked_channels(images)).reshape(-1, 3))


def domain_classifier(data_cfg: DataConfig, resolution: int, channels: int, *,
                      recipe: ClassifierRecipe = ClassifierRecipe(), cache_dir: str | Path | None = None,
                      device: str | torch.device = "cpu",
                      progress: bool = True) -> DomainClassifier | StackedDigitClassifier:
    """The domain classifier for ``data_cfg``'s dataset, trained on its *train* split at this geometry.

    Stacked MNIST gets the MNIST digit classifier applied per channel. Datasets without labels
    (folders) raise a DataError.
    """
    if data_cfg.source == "stacked-mnist":
        mnist = DataConfig(source="mnist", root=data_cfg.root, split="train", download=data_cfg.download)
        digits = load_or_train(load_dataset(mnist, resolution, 1), recipe,
                               cache_dir=cache_dir, device=device, progress=progress)
        return StackedDigitClassifier(digits)
    train_cfg = dataclasses.replace(data_cfg, split="train", max_images=None, hflip=False)
    dataset = load_dataset(train_cfg, resolution, channels)
    return load_or_train(dataset, recipe, cache_dir=cache_dir, device=device, progress=progress)
