"""Snapshots and training states: round trips and a one-line error for every way a file can be wrong."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file, save_file

from deconvgan.checkpoint import (
    FORMAT_VERSION,
    load_snapshot,
    load_training_state,
    save_snapshot,
)
from deconvgan.config import ModelConfig
from deconvgan.errors import CheckpointError
from deconvgan.models import build_generator
from deconvgan.training import train

MODEL = ModelConfig(resolution=16, latent_dim=8, g_width=8, d_width=8, max_width=16)


@pytest.fixture
def snapshot(tmp_path):
    torch.manual_seed(0)
    generator = build_generator(MODEL).eval()
    path = tmp_path / "snap.safetensors"
    save_snapshot(path, generator, MODEL, step=7, kimg=0.5, run_name="r", dataset="blobs")
    return path, generator


def test_snapshot_round_trip_is_exact(snapshot):
    path, generator = snapshot
    loaded, info = load_snapshot(path)
    assert info.model == MODEL and info.step == 7 and info.kimg == 0.5 and info.dataset == "blobs"
    z = torch.randn(4, MODEL.latent_dim)
    with torch.no_grad():
        assert torch.equal(loaded(z), generator(z))


def test_snapshot_of_a_run_directory_is_its_latest(make_config, blobs):
    result = train(make_config(), dataset=blobs)
    _, info = load_snapshot(result.run_dir)
    assert info.step == result.step


def _one_line(exc: pytest.ExceptionInfo) -> str:
    message = str(exc.value)
    assert "\n" not in message
    return message


def test_missing_file(tmp_path):
    with pytest.raises(CheckpointError, match="no such snapshot file") as exc:
        load_snapshot(tmp_path / "nope.safetensors")
    assert "nope.safetensors: no such snapshot file" in _one_line(exc)


def test_truncated_file(snapshot):
    path, _ = snapshot
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="not a readable snapshot") as exc:
        load_snapshot(path)
    assert f"{path}: not a readable snapshot (truncated" in _one_line(exc)


def test_not_a_safetensors_file(tmp_path):
    path = tmp_path / "weights.safetensors"
    path.write_bytes(b"PK\x03\x04 definitely a zip, not safetensors")
    with pytest.raises(CheckpointError, match="not a readable snapshot"):
        load_snapshot(path)


def test_foreign_safetensors_without_our_metadata(tmp_path):
    path = tmp_path / "foreign.safetensors"
    save_file({"w": torch.zeros(2)}, str(path))
    with pytest.raises(CheckpointError, match="without deconvgan metadata"):
        load_snapshot(path)


def _rewrite_metadata(path, **changes):
    from safetensors import safe_open

    with safe_open(str(path), "pt") as f:
        metadata = dict(f.metadata())
    metadata.update({k: v if isinstance(v, str) else json.dumps(v) for k, v in changes.items()})
    save_file(load_file(str(path)), str(path), metadata=metadata)


def test_newer_format_asks_for_an_upgrade(snapshot):
    path, _ = snapshot
    _rewrite_metadata(path, format_version=str(FORMAT_VERSION + 1), package_version="9.0.0")
    with pytest.raises(CheckpointError, match="upgrade deconvgan") as exc:
        load_snapshot(path)
    assert "written by deconvgan 9.0.0" in _one_line(exc) and "upgrade deconvgan" in str(exc.value)


def test_weights_of_another_architecture(snapshot):
    path, _ = snapshot
    other = {**MODEL.__dict__, "g_width": 16}
    _rewrite_metadata(path, model=other)
    with pytest.raises(CheckpointError, match="shape") as exc:
        load_snapshot(path)
    assert "weight" in _one_line(exc) and "shape" in str(exc.value)


def test_training_state_is_not_a_snapshot(make_config, blobs):
    result = train(make_config(), dataset=blobs)
    with pytest.raises(CheckpointError, match="expected a snapshot"):
        load_snapshot(result.run_dir / "training-state.safetensors")
    state = load_training_state(result.run_dir / "training-state.safetensors")
    assert state.step == 6 and state.config == make_config()
    assert state.opt_g["param_groups"][0]["betas"] == (0.5, 0.999)
    with pytest.raises(CheckpointError, match="expected a training state"):
        load_training_state(result.snapshot)


def test_files_are_safetensors_with_no_pickle(make_config, blobs):
    result = train(make_config(), dataset=blobs)
    for name in ("snapshot.safetensors", "training-state.safetensors"):
        head = (result.run_dir / name).read_bytes()[:16]
        header_len = int.from_bytes(head[:8], "little")
        assert head[8:9] == b"{" and header_len > 0  # a JSON header: nothing executable
