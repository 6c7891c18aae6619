"""Texture sources with material classes: labels from subfolders, crops that carry them, classes drawn alike."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from deconvgan.config import DataConfig
from deconvgan.data.classes import check_classes, class_balance
from deconvgan.data.crops import RandomCrops, TextureSources, load_texture_sources
from deconvgan.errors import DataError


def _save(path, value, size):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((*size, 3), value, np.uint8)).save(path)


@pytest.fixture
def materials(tmp_path):
    """materials/bark (one large image), materials/gravel (two small ones): constant colours per source."""
    root = tmp_path / "materials"
    _save(root / "gravel" / "a.png", 10, (20, 24))
    _save(root / "gravel" / "b.png", 20, (20, 20))
    _save(root / "bark" / "big.png", 200, (64, 80))
    return root


def test_sources_are_labelled_by_their_subfolder(materials):
    sources = load_texture_sources(DataConfig(source="folder", path=str(materials)), 3, 16, classes=True)
    assert sources.class_names == ("bark", "gravel") and sources.num_classes == 2  # sorted by name
    assert sources.labels.tolist() == [0, 1, 1]
    assert [int(im[0, 0, 0]) for im in sources.images] == [200, 10, 20]
    check_classes(sources, 2)
    assert class_balance(sources) == "bark: 1, gravel: 2"
    unlabelled = load_texture_sources(DataConfig(source="folder", path=str(materials)), 3, 16)
    assert unlabelled.labels is None and len(unlabelled) == 3  # without classes: every image under the folder


def test_crops_carry_their_sources_class_and_classes_come_equally_often(materials):
    sources = load_texture_sources(DataConfig(source="folder", path=str(materials)), 3, 16, classes=True)
    crops = RandomCrops(sources, 16, 400, torch.device("cpu"), hflip=True, rot90=True, labels=sources.labels)
    batch = crops.get(7, torch.Generator().manual_seed(0))
    labels = crops.labels_of(7)
    assert batch.shape == (400, 3, 16, 16) and labels.shape == (400,) and labels.dtype == torch.int64
    value = (batch[:, 0, 0, 0] + 1) * 127.5  # each crop is one source's constant colour
    assert torch.equal(labels == 0, value.round() == 200)
    # bark has 3.6x the crop positions of both gravel images together, yet each class is drawn about half the time
    assert 0.4 < (labels == 0).double().mean() < 0.6
    with pytest.raises(ValueError, match="the last crops drawn were for batch 7"):
        crops.labels_of(8)
    plain = RandomCrops(sources, 16, 400, torch.device("cpu"))  # unlabelled: by crop positions, as before
    plain.get(0, torch.Generator().manual_seed(0))
    assert plain.labels_of(0) is None


def test_the_draws_are_the_unlabelled_ones_when_a_class_holds_everything():
    torch.manual_seed(0)
    images = (torch.randint(0, 256, (3, 12, 10), dtype=torch.uint8),
              torch.randint(0, 256, (3, 9, 9), dtype=torch.uint8))
    sources = TextureSources(images, "two")
    plain = RandomCrops(sources, 6, 16, torch.device("cpu")).get(0, torch.Generator().manual_seed(3))
    one_class = RandomCrops(sources, 6, 16, torch.device("cpu"), labels=torch.zeros(2, dtype=torch.int64))
    assert torch.equal(one_class.get(0, torch.Generator().manual_seed(3)), plain)


@pytest.mark.parametrize(("layout", "needle"), [
    ("flat", "the folder has no subfolders"),
    ("single", "is one photograph without classes, but model.num_classes > 0 asks for classes"),
    ("sample", "the embedded texture sample is one photograph without classes"),
    ("empty", "class 'leaves' has no images"),
    ("loose", "an image outside the class subfolders"),
])
def test_sources_without_classes_are_one_line_errors(tmp_path, materials, layout, needle):
    cfg = DataConfig(source="folder", path=str(materials))
    if layout == "flat":
        cfg = DataConfig(source="folder", path=str(materials / "gravel"))
    elif layout == "single":
        cfg = DataConfig(source="folder", path=str(materials / "bark" / "big.png"))
    elif layout == "sample":
        cfg = DataConfig(source="texture-sample")
    elif layout == "empty":
        (materials / "leaves").mkdir()
    elif layout == "loose":
        _save(materials / "stray.png", 0, (20, 20))
    with pytest.raises(DataError, match=needle) as info:
        load_texture_sources(cfg, 3, 16, classes=True)
    assert "\n" not in str(info.value)
