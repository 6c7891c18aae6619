"""Texture sources at full resolution and seeded random crops of them."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from deconvgan.config import DataConfig
from deconvgan.data.crops import RandomCrops, TextureSources, load_texture_sources
from deconvgan.errors import DataError


def _save(path, array):
    Image.fromarray(array).save(path)
    return path


@pytest.fixture
def photo(tmp_path):
    rng = np.random.default_rng(0)
    return _save(tmp_path / "stone.png", rng.integers(0, 256, (70, 90, 3), dtype=np.uint8))


def test_one_image_is_kept_at_full_resolution(photo):
    sources = load_texture_sources(DataConfig(source="folder", path=str(photo)), channels=3, crop=32)
    assert sources.name == "stone.png" and len(sources) == 1
    assert torch.equal(sources.images[0], torch.from_numpy(np.array(Image.open(photo))).permute(2, 0, 1))


def test_a_folder_gives_every_image_and_scale_resamples(tmp_path, photo):
    _save(tmp_path / "b.png", np.zeros((40, 50, 3), np.uint8))
    sources = load_texture_sources(DataConfig(source="folder", path=str(tmp_path), scale=0.5), channels=1, crop=16)
    assert [tuple(im.shape) for im in sources.images] == [(1, 20, 25), (1, 35, 45)]  # sorted: b.png, stone.png


def test_the_embedded_sample_loads_offline():
    sources = load_texture_sources(DataConfig(source="texture-sample"), channels=3, crop=128)
    assert sources.images[0].shape == (3, 512, 512) and sources.images[0].float().std() > 20


def test_a_source_smaller_than_the_crop_is_refused(photo):
    with pytest.raises(DataError, match=r"stone.png: 90x70 pixels is smaller than the 128-pixel training crop"):
        load_texture_sources(DataConfig(source="folder", path=str(photo)), channels=3, crop=128)


def test_bad_files_are_named_or_skipped(tmp_path, photo):
    (tmp_path / "broken.jpg").write_bytes(b"not a jpeg")
    cfg = DataConfig(source="folder", path=str(tmp_path))
    with pytest.raises(DataError, match=r"broken.jpg: unreadable or corrupt image .*--skip-bad-files"):
        load_texture_sources(cfg, channels=3, crop=32)
    with pytest.warns(UserWarning, match="broken.jpg"):
        sources = load_texture_sources(DataConfig(source="folder", path=str(tmp_path), skip_bad_files=True), 3, 32)
    assert len(sources) == 1
    with pytest.raises(DataError, match="no such image or folder"):
        load_texture_sources(DataConfig(source="folder", path=str(tmp_path / "nope")), 3, 32)


def _windows(image: torch.Tensor, crop: int) -> set[bytes]:
    """Every crop x crop window of ``image`` under the 8 symmetries of the square, as bytes."""
    found = set()
    _, h, w = image.shape
    for top in range(h - crop + 1):
        for left in range(w - crop + 1):
            window = image[:, top:top + crop, left:left + crop]
            for flipped in (window, window.flip(2)):
                for turns in range(4):
                    found.add(torch.rot90(flipped, turns, dims=(1, 2)).contiguous().numpy().tobytes())
    return found


def test_crops_are_windows_of_the_sources_and_seeded():
    torch.manual_seed(0)
    images = (torch.randint(0, 256, (3, 12, 10), dtype=torch.uint8),
              torch.randint(0, 256, (3, 9, 9), dtype=torch.uint8))
    sources = TextureSources(images, "two")
    crops = RandomCrops(sources, 6, 16, torch.device("cpu"), hflip=True, rot90=True)
    batch = crops.get(0, torch.Generator().manual_seed(3))
    assert batch.shape == (16, 3, 6, 6) and batch.min() >= -1 and batch.max() <= 1
    allowed = _windows(images[0], 6) | _windows(images[1], 6)
    as_uint8 = batch.add(1).mul(127.5).round().to(torch.uint8)
    assert all(c.contiguous().numpy().tobytes() in allowed for c in as_uint8)
    assert torch.equal(batch, crops.get(0, torch.Generator().manual_seed(3)))
    assert not torch.equal(batch, crops.get(0, torch.Generator().manual_seed(4)))


def test_each_rank_takes_its_share_of_the_same_global_batch():
    sources = TextureSources((torch.randint(0, 256, (1, 20, 20), dtype=torch.uint8),), "one")
    whole = RandomCrops(sources, 8, 6, torch.device("cpu")).get(0, torch.Generator().manual_seed(1))
    shares = [RandomCrops(sources, 8, 6, torch.device("cpu"), rank=r, world_size=3)
              .get(0, torch.Generator().manual_seed(1)) for r in range(3)]
    assert torch.equal(torch.cat(shares), whole)


def test_sources_are_chosen_by_their_number_of_crop_positions():
    big, small = torch.zeros(1, 40, 40, dtype=torch.uint8), torch.full((1, 10, 10), 255, dtype=torch.uint8)
    crops = RandomCrops(TextureSources((big, small), "two"), 10, 4000, torch.device("cpu"))
    share_small = (crops.get(0, torch.Generator().manual_seed(0))[:, 0, 0, 0] > 0).float().mean().item()
    assert share_small == pytest.approx(1 / (31 * 31 + 1), abs=0.002)  # 1 position of 962
