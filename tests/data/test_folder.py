"""Image folders: formats, modes, EXIF, ordering, hidden files and every bad-input case."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from deconvgan.config import DataConfig
from deconvgan.data import load_dataset
from deconvgan.errors import DataError

from .conftest import one_line_message

ADAPTIVE = Image.Palette.ADAPTIVE  # an exact palette; the default web palette would dither


def _cfg(path: Path, **kw: object) -> DataConfig:
    return DataConfig(source="folder", path=str(path), **kw)  # type: ignore[arg-type]


def _save(path: Path, img: Image.Image, **kw: object) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path, **kw)
    return path


def _noise_png(path: Path, side: int = 64) -> Path:
    pixels = np.random.default_rng(0).integers(0, 256, (side, side, 3), dtype=np.uint8)
    return _save(path, Image.fromarray(pixels, "RGB"))


def _one_line_error(cfg: DataConfig, name: str, channels: int = 3) -> str:
    with pytest.raises(DataError, match=re.escape(name)) as exc:
        load_dataset(cfg, 16, channels)
    return one_line_message(exc, name)


def test_formats_sizes_and_modes(tmp_path: Path) -> None:
    _save(tmp_path / "a_rgb.png", Image.new("RGB", (40, 20), (10, 20, 30)))
    _save(tmp_path / "b_big.jpg", Image.new("RGB", (640, 480), (200, 100, 50)), quality=95)
    _save(tmp_path / "c_lossless.webp", Image.new("RGB", (30, 50), (0, 255, 0)), lossless=True)
    _save(tmp_path / "d_gray.bmp", Image.new("L", (17, 17), 77))
    _save(tmp_path / "e_clear.png", Image.new("RGBA", (20, 20), (255, 0, 0, 0)))
    _save(tmp_path / "f_half.png", Image.new("RGBA", (20, 20), (255, 0, 0, 128)))
    _save(tmp_path / "g_palette.png", Image.new("RGB", (12, 9), (0, 128, 255)).convert("P", palette=ADAPTIVE))
    frames = [Image.new("RGB", (16, 16), c).convert("P", palette=ADAPTIVE) for c in ((250, 0, 0), (0, 0, 9))]
    frames[0].save(tmp_path / "h_anim.gif", save_all=True, append_images=frames[1:])
    _save(tmp_path / "i_rgb.tif", Image.new("RGB", (24, 16), (1, 2, 3)))
    wide = Image.fromarray(np.full((10, 10), 65535, np.uint16))
    _save(tmp_path / "j_16bit.png", wide)

    ds = load_dataset(_cfg(tmp_path), 16, 3)
    assert ds.images.shape == (10, 3, 16, 16) and ds.images.dtype == torch.uint8
    assert ds.labels is None and ds.num_classes is None and ds.name == f"folder:{tmp_path}"

    def colour(i: int) -> list[int]:
        pixel = ds.images[i].reshape(3, -1)
        assert torch.all(pixel == pixel[:, :1]), f"image {i} is not flat"
        return pixel[:, 0].tolist()

    assert colour(0) == [10, 20, 30]
    assert all(abs(a - b) <= 3 for a, b in zip(colour(1), [200, 100, 50], strict=True))  # JPEG is lossy
    assert colour(2) == [0, 255, 0]
    assert colour(3) == [77, 77, 77]
    assert colour(4) == [255, 255, 255]  # fully transparent -> the white background
    assert colour(5)[0] == 255 and all(abs(v - 127) <= 1 for v in colour(5)[1:])  # half red over white
    assert colour(6) == [0, 128, 255]
    assert colour(7) == [250, 0, 0]  # the GIF's first frame
    assert colour(8) == [1, 2, 3]
    assert colour(9) == [255, 255, 255]  # 16-bit white scales to 255, not clipped mid-range

    gray = load_dataset(_cfg(tmp_path, max_images=1), 8, 1)
    assert gray.images.shape == (1, 1, 8, 8)
    expected = np.asarray(Image.new("RGB", (1, 1), (10, 20, 30)).convert("L"))[0, 0]
    assert torch.all(gray.images == int(expected))


def test_transparent_palette_and_16bit_mid_grey(tmp_path: Path) -> None:
    pal = Image.new("P", (8, 8), 0)
    pal.putpalette([9, 9, 9] + [0, 0, 0] * 255)
    _save(tmp_path / "a.png", pal, transparency=0)
    _save(tmp_path / "b.png", Image.fromarray(np.full((8, 8), 32768, np.uint16)))
    ds = load_dataset(_cfg(tmp_path), 8, 1)
    assert torch.all(ds.images[0] == 255)  # the transparent palette colour is white, not (9, 9, 9)
    assert torch.all(ds.images[1] == 128)


def test_shorter_side_is_scaled_and_the_centre_kept(tmp_path: Path) -> None:
    # 30x10: left third black, middle third white, right third black -> the centre square is white.
    pixels = np.zeros((10, 30), np.uint8)
    pixels[:, 10:20] = 255
    _save(tmp_path / "wide.png", Image.fromarray(pixels, "L"))
    ds = load_dataset(_cfg(tmp_path), 10, 1)
    assert ds.images.shape == (1, 1, 10, 10)
    assert int(ds.images[0, 0, :, 2:8].min()) >= 250


def test_exif_orientation_is_applied(tmp_path: Path) -> None:
    # Stored 40 wide x 20 high, left half black; orientation 6 shows it rotated 90 degrees clockwise,
    # so the black half ends up on top of a 20 x 40 portrait.
    pixels = np.full((20, 40, 3), 255, np.uint8)
    pixels[:, :20] = 0
    exif = Image.Exif()
    exif[0x0112] = 6
    _save(tmp_path / "rotated.jpg", Image.fromarray(pixels, "RGB"), exif=exif.tobytes(), quality=95)
    ds = load_dataset(_cfg(tmp_path), 8, 1)
    img = ds.images[0, 0].int()
    assert img[:3].max() < 40 and img[-3:].min() > 215  # dark rows on top, bright rows below


def test_order_recursion_and_hidden_entries(tmp_path: Path) -> None:
    for rel, value in (("b/x.png", 3), ("a.png", 2), ("a/y.png", 1), (".hidden.png", 9), (".git/z.png", 9)):
        _save(tmp_path / rel, Image.new("L", (4, 4), value))
    (tmp_path / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")
    ds = load_dataset(_cfg(tmp_path), 4, 1)
    # Sorted by relative path components: ("a", "y.png") < ("a.png",) < ("b", "x.png").
    assert ds.images[:, 0, 0, 0].tolist() == [1, 2, 3]
    first_two = load_dataset(_cfg(tmp_path, max_images=2), 4, 1)
    assert first_two.images[:, 0, 0, 0].tolist() == [1, 2]


def test_missing_folder_and_not_a_folder(tmp_path: Path) -> None:
    _one_line_error(_cfg(tmp_path / "nope"), "nope")
    (tmp_path / "file.png").write_bytes(b"x")
    assert "not a folder" in _one_line_error(_cfg(tmp_path / "file.png"), "file.png")


def test_empty_folder_and_no_images(tmp_path: Path) -> None:
    message = _one_line_error(_cfg(tmp_path), str(tmp_path))
    assert "no images found" in message and ".png" in message and ".webp" in message
    (tmp_path / "notes.txt").write_text("hello")
    assert "notes.txt" in _one_line_error(_cfg(tmp_path), "no images found")
    assert "notes.txt" in _one_line_error(_cfg(tmp_path, skip_bad_files=True), "no images found")


def test_non_image_file(tmp_path: Path) -> None:
    _noise_png(tmp_path / "good.png")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "labels.csv").write_text("a,b")
    message = _one_line_error(_cfg(tmp_path), "labels.csv")
    assert "skip_bad_files=true" in message and "remove it" in message


def test_png_cut_in_half(tmp_path: Path) -> None:
    _noise_png(tmp_path / "good.png")
    bad = _noise_png(tmp_path / "half.png")
    bad.write_bytes(bad.read_bytes()[: bad.stat().st_size // 2])
    assert "skip_bad_files=true" in _one_line_error(_cfg(tmp_path), "half.png")


@pytest.mark.parametrize("name, content", [("fake.jpg", b"not a jpeg at all"), ("empty.png", b""),
                                           ("wrong.webp", b"RIFF\x10\x00\x00\x00WEBPVP8 garbage")])
def test_unreadable_image_files(tmp_path: Path, name: str, content: bytes) -> None:
    (tmp_path / name).write_bytes(content)
    _one_line_error(_cfg(tmp_path), name)


def test_decompression_bomb(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _save(tmp_path / "bomb.png", Image.new("L", (40, 40), 0))
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # 1600 pixels > 2 * 100: Pillow refuses it
    assert "decompression bomb" in _one_line_error(_cfg(tmp_path), "bomb.png")


def test_skip_bad_files_warns_once_with_the_count(tmp_path: Path) -> None:
    for i in range(3):
        _save(tmp_path / f"ok{i}.png", Image.new("RGB", (8, 8), (i, i, i)))
    bad = _noise_png(tmp_path / "cut.png")
    bad.write_bytes(bad.read_bytes()[:100])
    (tmp_path / "readme.txt").write_text("x")
    (tmp_path / "junk.jpg").write_bytes(b"junk")
    with pytest.warns(UserWarning, match="skipped 3 bad file") as record:
        ds = load_dataset(_cfg(tmp_path, skip_bad_files=True), 8, 3)
    assert len(record) == 1
    message = str(record[0].message)
    assert "readme.txt" in message and "cut.png" in message and "junk.jpg" in message
    assert ds.images.shape == (3, 3, 8, 8)
    assert ds.images[:, 0, 0, 0].tolist() == [0, 1, 2]


def test_skip_bad_files_with_nothing_left(tmp_path: Path) -> None:
    (tmp_path / "a.png").write_bytes(b"broken")
    (tmp_path / "b.gif").write_bytes(b"GIF89a")
    with pytest.raises(DataError, match="none of the 2 image files could be read"):
        load_dataset(_cfg(tmp_path, skip_bad_files=True), 8, 3)
