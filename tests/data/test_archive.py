"""An archive of images as --data: read in memory, the same images as the extracted folder, bad archives named."""

from __future__ import annotations

import io
import re
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from deconvgan.config import DataConfig
from deconvgan.data import load_dataset
from deconvgan.data.archive import read_archive
from deconvgan.errors import DataError

from .conftest import one_line_message


def _png(colour: tuple[int, ...], mode: str = "RGB") -> bytes:
    buf = io.BytesIO()
    Image.new(mode, (20, 12), colour).save(buf, format="PNG")
    return buf.getvalue()


FILES = {"set/b.png": _png((0, 0, 200)), "set/a.png": _png((200, 0, 0)), "set/sub/c.png": _png((0, 200, 0, 0), "RGBA"),
         "set/.hidden.png": _png((1, 1, 1)), "__MACOSX/set/._a.png": b"junk"}


def _tar(path: Path, files: dict[str, bytes], mode: str = "w:gz") -> Path:
    with tarfile.open(path, mode) as tf:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return path


def _cfg(path: Path, **kw: object) -> DataConfig:
    return DataConfig(source="folder", path=str(path), **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize("suffix", ["tar.gz", "tar", "zip"])
def test_archive_equals_extracted_folder(tmp_path: Path, suffix: str) -> None:
    archive = tmp_path / f"images.{suffix}"
    if suffix == "zip":
        with zipfile.ZipFile(archive, "w") as zf:
            for name, data in FILES.items():
                zf.writestr(name, data)
    else:
        _tar(archive, FILES, "w:gz" if suffix == "tar.gz" else "w")
    folder = tmp_path / "extracted"
    for name, data in FILES.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)
    packed = load_dataset(_cfg(archive, background="#102030"), 8, 3)
    unpacked = load_dataset(_cfg(folder / "set", background="#102030"), 8, 3)
    assert packed.images.shape == (3, 3, 8, 8)  # hidden files and resource forks skipped
    assert torch.equal(packed.images, unpacked.images)  # same order (a, b, sub/c) and pixels
    assert packed.images[:, :, 0, 0].tolist() == [[200, 0, 0], [0, 0, 200], [16, 32, 48]]  # c: clear on #102030


def test_member_paths_never_reach_the_file_system(tmp_path: Path) -> None:
    archive = _tar(tmp_path / "evil.tar", {"../../escape.png": _png((5, 5, 5)), "/abs.png": _png((6, 6, 6))}, "w")
    members = read_archive(archive)
    assert [m.name for m in members] == ["abs.png"]  # '..' parts count as hidden; '/abs' loses its root
    assert load_dataset(_cfg(archive), 4, 3).images[0, :, 0, 0].tolist() == [6, 6, 6]
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["evil.tar"]  # nothing written anywhere


def test_links_and_folders_are_not_images(tmp_path: Path) -> None:
    archive = tmp_path / "links.tar"
    with tarfile.open(archive, "w") as tf:
        link = tarfile.TarInfo("link.png")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tf.addfile(link)
        info = tarfile.TarInfo("real.png")
        data = _png((7, 7, 7))
        info.size = len(data)
        tf.addfile(info, io.BytesIO(data))
    assert [m.name for m in read_archive(archive)] == ["real.png"]


def test_bad_archives_are_one_line_errors(tmp_path: Path) -> None:
    broken = tmp_path / "broken.tar.gz"
    broken.write_bytes(b"\x1f\x8b\x08\x00" + bytes(range(200)))
    with pytest.raises(DataError, match=re.escape(str(broken))) as exc:
        load_dataset(_cfg(broken), 8, 3)
    assert "cannot read the archive" in one_line_message(exc, str(broken))

    empty = _tar(tmp_path / "texts.tar.gz", {"notes.txt": b"hello"})
    with pytest.raises(DataError, match="no images found") as exc:
        load_dataset(_cfg(empty), 8, 3)
    one_line_message(exc, "notes.txt")

    corrupt = _tar(tmp_path / "corrupt.tar.gz", {"a.png": _png((1, 2, 3)), "b.png": b"\x89PNG not really"})
    with pytest.raises(DataError, match=re.escape("b.png")):
        load_dataset(_cfg(corrupt), 8, 3)
    with pytest.warns(UserWarning, match=r"skipped 1 bad file\(s\).*b\.png"):
        assert load_dataset(_cfg(corrupt, skip_bad_files=True), 8, 3).images[0, :, 0, 0].tolist() == [1, 2, 3]


def test_other_files_are_refused_with_the_accepted_kinds(tmp_path: Path) -> None:
    other = tmp_path / "images.rar"
    other.write_bytes(b"Rar!")
    with pytest.raises(DataError, match="not a folder or an archive") as exc:
        load_dataset(_cfg(other), 8, 3)
    one_line_message(exc, str(other), ".tar.gz", ".zip")


def test_background_colour_is_validated_and_used(tmp_path: Path) -> None:
    from deconvgan.errors import ConfigError

    with pytest.raises(ConfigError, match="data.background='nope'"):
        DataConfig(background="nope")
    Image.new("RGBA", (8, 8), (255, 0, 0, 0)).save(tmp_path / "clear.png")
    pal = Image.new("P", (8, 8), 0)
    pal.putpalette([9, 9, 9] + [0, 0, 0] * 255)
    pal.save(tmp_path / "pal.png", transparency=0)
    for colour, rgb in (("black", [0, 0, 0]), ("#808000", [128, 128, 0]), ("white", [255, 255, 255])):
        ds = load_dataset(_cfg(tmp_path, background=colour), 4, 3)
        assert np.all(ds.images.permute(0, 2, 3, 1).reshape(-1, 3).numpy() == rgb), colour
