"""Real-data feature statistics cache: hits, keys, atomic safetensors + JSON files, corrupt-file recovery."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from deconvgan.metrics.cache import CACHE_ENV, CacheWarning, cache_root, cached_feature_stats, tensor_checksum
from deconvgan.metrics.frechet import feature_statistics


class CountingExtractor:
    """A cheap deterministic extractor: per-image channel means and a few pixel moments, counting calls."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        x = images.float().flatten(1)  # [N, C*H*W]
        return torch.stack([x.mean(1), x.std(1), x[:, :5].sum(1), x.amax(1)], dim=1)  # [N, 4]


def images(n: int = 20, seed: int = 0) -> torch.Tensor:
    return torch.randint(0, 256, (n, 1, 8, 8), generator=torch.Generator().manual_seed(seed), dtype=torch.uint8)


def stats(x: torch.Tensor, extractor: CountingExtractor, folder: Path, **overrides):
    kwargs = {"dataset": "toy", "split": "test", "extractor_name": "counting", "extractor_version": 1,
              "cache_dir": folder, **overrides}
    return cached_feature_stats(x, extractor, **kwargs)


def files(folder: Path) -> tuple[Path, Path]:
    (tensors,), (meta,) = sorted(folder.glob("*.safetensors")), sorted(folder.glob("*.json"))
    return tensors, meta


def test_second_call_is_served_from_disk_exactly(tmp_path: Path) -> None:
    ext = CountingExtractor()
    first = stats(images(), ext, tmp_path)
    second = stats(images(), ext, tmp_path)
    assert ext.calls == 1
    assert torch.equal(first.features, second.features)
    assert torch.equal(first.mu, second.mu) and torch.equal(first.sigma, second.sigma)
    assert first.mu.dtype == torch.float64 and first.features.dtype == torch.float32
    mu, sigma = feature_statistics(first.features)
    assert torch.equal(second.mu, mu) and torch.equal(second.sigma, sigma)


def test_files_are_safetensors_and_json_never_pickle(tmp_path: Path) -> None:
    stats(images(), CountingExtractor(), tmp_path)
    tensors_path, meta_path = files(tmp_path)
    assert set(load_file(str(tensors_path))) == {"features", "mu", "sigma"}
    meta = json.loads(meta_path.read_text())
    assert meta["fields"]["dataset"] == "toy" and meta["fields"]["num_samples"] == 20
    assert meta["fields"]["resolution"] == 8 and meta["feature_dim"] == 4
    assert not list(tmp_path.glob(".*.tmp"))  # no leftovers of the atomic writes


@pytest.mark.parametrize("change", [
    {"split": "train"}, {"extractor_version": 2}, {"extractor_name": "other"}, {"dataset": "toy2"},
])
def test_every_key_field_separates_entries(tmp_path: Path, change: dict) -> None:
    ext = CountingExtractor()
    a = stats(images(), ext, tmp_path)
    b = stats(images(), ext, tmp_path, **change)
    assert ext.calls == 2 and a.key != b.key


def test_sample_count_and_content_are_in_the_key(tmp_path: Path) -> None:
    ext = CountingExtractor()
    a = stats(images(20), ext, tmp_path)
    b = stats(images(19), ext, tmp_path)
    c = stats(images(20, seed=1), ext, tmp_path)
    assert ext.calls == 3 and len({a.key, b.key, c.key}) == 3


@pytest.mark.parametrize("damage", ["truncate", "garbage", "json", "swap_tensor"])
def test_corrupt_cache_warns_once_and_is_recomputed(tmp_path: Path, damage: str) -> None:
    ext = CountingExtractor()
    good = stats(images(), ext, tmp_path)
    tensors_path, meta_path = files(tmp_path)
    if damage == "truncate":
        tensors_path.write_bytes(tensors_path.read_bytes()[:100])
    elif damage == "garbage":
        tensors_path.write_bytes(b"\x80\x04\x95not a safetensors file, maybe a pickle")
    elif damage == "json":
        meta_path.write_text("{not json")
    else:  # a valid file whose content belongs to another entry
        other = tmp_path / "other"
        stats(images(seed=5), CountingExtractor(), other)
        tensors_path.write_bytes(files(other)[0].read_bytes())
    with pytest.warns(CacheWarning, match="recomputing"):
        again = stats(images(), ext, tmp_path)
    assert ext.calls == 2 and torch.equal(again.features, good.features)
    assert torch.equal(stats(images(), ext, tmp_path).sigma, good.sigma) and ext.calls == 2  # repaired


def test_same_damage_warns_only_once(tmp_path: Path) -> None:
    ext = CountingExtractor()
    stats(images(), ext, tmp_path)
    tensors_path, _ = files(tmp_path)
    tensors_path.write_bytes(b"broken")
    with pytest.warns(CacheWarning):
        stats(images(), ext, tmp_path)
    tensors_path.write_bytes(b"broken")
    stats(images(), ext, tmp_path)  # the same message again: silent (filterwarnings=error would fail here)
    assert ext.calls == 3


def test_use_cache_false_writes_nothing(tmp_path: Path) -> None:
    ext = CountingExtractor()
    stats(images(), ext, tmp_path / "c", use_cache=False)
    stats(images(), ext, tmp_path / "c", use_cache=False)
    assert ext.calls == 2 and not (tmp_path / "c").exists()


def test_cache_root_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "env"))
    assert cache_root() == tmp_path / "env"
    assert cache_root(tmp_path / "x") == tmp_path / "x"
    monkeypatch.delenv(CACHE_ENV)
    assert cache_root() == Path("~/.cache/deconvgan").expanduser()


def test_default_folder_is_under_the_cache_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(CACHE_ENV, str(tmp_path))
    cached_feature_stats(images(), CountingExtractor(), dataset="toy", split="test",
                         extractor_name="counting", extractor_version=1)
    assert len(list((tmp_path / "features").glob("*.safetensors"))) == 1


def test_checksum_sees_dtype_shape_and_bytes() -> None:
    x = images()
    assert tensor_checksum(x) == tensor_checksum(x.clone())
    assert tensor_checksum(x) != tensor_checksum(x.reshape(20, 1, 4, 16))
    assert tensor_checksum(x) != tensor_checksum(x.to(torch.int16))
    y = x.clone()
    y[3, 0, 2, 2] ^= 1
    assert tensor_checksum(x) != tensor_checksum(y)
