"""Labels from a folder's class subfolders, the checks against model.num_classes, the class balance line."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from deconvgan.config import DataConfig
from deconvgan.data import ImageDataset, load_dataset
from deconvgan.data.classes import check_classes, class_balance, load_class_folders
from deconvgan.errors import DataError
from tests.data.conftest import one_line_message


def _png(path: Path, value: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((8, 8, 3), value, dtype=np.uint8), "RGB").save(path)


@pytest.fixture
def pets(tmp_path: Path) -> Path:
    """pets/{cat: 2 images, dog: 3 images, emu: 1 image}, each class its own grey level; a hidden folder."""
    root = tmp_path / "pets"
    for name, value, count in (("dog", 200, 3), ("cat", 100, 2), ("emu", 50, 1)):  # written out of order
        for k in range(count):
            _png(root / name / f"{k}.png", value)
    _png(root / ".thumbs" / "x.png", 255)
    return root


def test_subfolders_are_the_classes_in_sorted_order(pets):
    data = load_class_folders(DataConfig(source="folder", path=str(pets)), 8, 1)
    assert data.class_names == ("cat", "dog", "emu") and data.num_classes == 3
    assert data.labels.tolist() == [0, 0, 1, 1, 1, 2]
    grey = data.images[:, 0, 4, 4].tolist()  # each image's class is the folder it came from
    assert grey == [100, 100, 200, 200, 200, 50]
    assert class_balance(data) == "cat: 2, dog: 3, emu: 1"


def test_max_images_keeps_the_first_in_path_order_and_refuses_to_empty_a_class(pets):
    with pytest.raises(DataError) as info:  # the first 5 in path order: cat 0, 1 and dog 0, 1, 2
        load_class_folders(DataConfig(source="folder", path=str(pets), max_images=5), 8, 1)
    one_line_message(info, "data.max_images=5", "'emu'")
    assert load_class_folders(DataConfig(source="folder", path=str(pets), max_images=6), 8, 1).labels.tolist() \
        == [0, 0, 1, 1, 1, 2]


def test_a_flat_folder_asked_for_classes_is_one_line(tmp_path):
    _png(tmp_path / "flat" / "a.png", 10)
    with pytest.raises(DataError) as info:
        load_class_folders(DataConfig(source="folder", path=str(tmp_path / "flat")), 8, 1)
    one_line_message(info, str(tmp_path / "flat"), "no subfolders", "model.num_classes=0")


def test_a_class_without_images_is_one_line(pets):
    (pets / "fox").mkdir()
    with pytest.raises(DataError) as info:
        load_class_folders(DataConfig(source="folder", path=str(pets)), 8, 1)
    one_line_message(info, str(pets / "fox"), "'fox' has no images")


def test_an_image_outside_the_class_folders_is_one_line(pets):
    _png(pets / "stray.png", 0)
    with pytest.raises(DataError) as info:
        load_class_folders(DataConfig(source="folder", path=str(pets)), 8, 1)
    one_line_message(info, str(pets / "stray.png"), "subfolder of its class")


def test_the_dataset_must_match_the_model(pets):
    data = load_class_folders(DataConfig(source="folder", path=str(pets)), 8, 1)
    check_classes(data, 3)
    with pytest.raises(DataError) as info:
        check_classes(data, 4)
    one_line_message(info, "has 3 classes", "model.num_classes=3")
    unlabelled = ImageDataset(images=data.images, labels=None, name="flat", num_classes=None)
    with pytest.raises(DataError) as info:
        check_classes(unlabelled, 3)
    one_line_message(info, "no class labels", "model.num_classes=0")
    holes = ImageDataset(images=data.images, labels=torch.tensor([0, 0, 2, 2, 2, 2]), name="h", num_classes=3)
    with pytest.raises(DataError) as info:
        check_classes(holes, 3)
    one_line_message(info, "class '1' has no images")


def test_many_classes_are_summarised_in_the_balance_line():
    labels = torch.arange(30).repeat_interleave(2)[:-1]  # 30 classes, the last one image short
    data = ImageDataset(images=torch.zeros(59, 1, 4, 4, dtype=torch.uint8), labels=labels, name="x", num_classes=30)
    assert class_balance(data) == "30 classes, 30 with images; fewest 1 (29), most 2 (0), mean 2.0"


def test_fashion_mnist_carries_its_class_names(shared_root):
    data = load_dataset(DataConfig(source="fashion-mnist", root=str(shared_root), download=False, max_images=50), 28, 1)
    assert data.class_names[7] == "Sneaker" and len(data.class_names) == 10
