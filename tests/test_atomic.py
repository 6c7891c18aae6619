"""Atomic writes: a failure mid-write leaves the previous file intact and no temporary behind."""

import os
import stat

import pytest
import torch
from safetensors.torch import save_file

from deconvgan.atomic import write_text, write_with


def test_replaces_content(tmp_path):
    path = tmp_path / "f.txt"
    write_text(path, "one")
    write_text(path, "two")
    assert path.read_text() == "two"
    assert [p.name for p in tmp_path.iterdir()] == ["f.txt"]


def test_crash_mid_write_keeps_the_old_file(tmp_path):
    path = tmp_path / "state.bin"
    write_text(path, "good")

    def crashing_writer(tmp):
        tmp.write_bytes(b"half-wri")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        write_with(path, crashing_writer)
    assert path.read_text() == "good"
    assert [p.name for p in tmp_path.iterdir()] == ["state.bin"]


def test_creates_parent_folders(tmp_path):
    write_text(tmp_path / "a" / "b" / "c.txt", "x")
    assert (tmp_path / "a" / "b" / "c.txt").read_text() == "x"


@pytest.mark.skipif(os.name != "posix", reason="POSIX permission bits")
def test_written_files_get_the_usual_permissions_not_owner_only(tmp_path):
    mask = os.umask(0)
    os.umask(mask)
    write_text(tmp_path / "config.yaml", "x")
    # safetensors recreates the file it is given (owner-only): the result must still be readable as usual
    write_with(tmp_path / "w.safetensors", lambda tmp: save_file({"w": torch.zeros(2)}, str(tmp)))
    for name in ("config.yaml", "w.safetensors"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o666 & ~mask, name
