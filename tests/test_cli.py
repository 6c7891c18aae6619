"""The command line, end to end on tiny runs: train, resume, sample, interpolate, info, errors."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from importlib import resources
from pathlib import Path

import pytest
import yaml
from PIL import Image

from deconvgan.cli import build_parser, main, preset_names, resolve_train_config

TINY = ["--set", "model.g_width=8", "--set", "model.d_width=8", "--set", "model.max_width=16",
        "--set", "model.latent_dim=8", "--set", "run.grid_size=4", "--set", "run.tensorboard=false",
        "--set", "train.batch_size=16", "--no-progress", "--device", "cpu"]


@pytest.fixture
def run_dir(tmp_path):
    runs = tmp_path / "runs"
    assert main(["train", "--runs-dir", str(runs), "--set", "train.phases=[{steps: 4}]", *TINY]) == 0
    (path,) = runs.iterdir()
    return path


def test_dry_run_prints_config_and_model_sizes(capsys):
    assert main(["train", "mnist-28", "--dry-run", "--set", "train.batch_size=32"]) == 0
    out = capsys.readouterr().out
    assert "resolution: 28" in out and "batch_size: 32" in out and "Total params" in out
    assert "ConvTranspose2d" in out and "1x28x28" in out


def test_default_is_the_embedded_digits_preset():
    cfg = resolve_train_config(build_parser().parse_args(["train"]))
    assert cfg.data.source == "digits" and cfg.model.resolution == 16


def _leaves(tree: object, prefix: str = "") -> dict[str, object]:
    """``{"a.b": value}`` for every leaf of nested dicts and lists (list items keyed by index)."""
    if isinstance(tree, dict):
        items = tree.items()
    elif isinstance(tree, list):
        items = ((str(i), v) for i, v in enumerate(tree))
    else:
        return {prefix: tree}
    return {k: v for key, value in items for k, v in _leaves(value, f"{prefix}.{key}" if prefix else key).items()}


@pytest.mark.parametrize("name", ["digits", "mnist-28", "fashion-28", "mnist-28-deep", "fashion-28-deep",
                                  "stacked-mnist", "stacked-mnist-deep", "seed-64", "emoji-64", "mlp-28", "texture"])
def test_presets_resolve(name, capsys):
    assert name in preset_names()
    extra = ["--data", "some/folder"] if name in ("seed-64", "emoji-64") else []
    cfg = resolve_train_config(build_parser().parse_args(["train", name, *extra]))
    resolved = _leaves(cfg.to_dict())
    # Every value the preset's YAML sets is the resolved value (a folder preset's folder comes from --data).
    written = _leaves(yaml.safe_load(resources.files("deconvgan.configs").joinpath(f"{name}.yaml").read_text()))
    if extra:  # --data: saved absolute, and the run is named after the data and the architecture
        written["data.path"], written["name"] = str(Path("some/folder").resolve()), f"folder-{resolved['model.arch']}"
    assert len(written) >= 8 and {k: resolved.get(k, "<missing>") for k in written} == written
    # The dry run prints exactly that config, and the schedule's length in steps of the preset's batch.
    assert main(["train", name, "--dry-run", *extra]) == 0
    printed = capsys.readouterr().out
    assert _leaves(yaml.safe_load(printed.split("\ngenerator:")[0])) == resolved
    batch = written["train.batch_size"]
    steps = sum(math.ceil(phase.kimg * 1000 / batch) for phase in cfg.train.phases)
    assert f"schedule: {steps} generator steps of {batch} images" in printed


def test_flags_map_to_config_keys():
    args = build_parser().parse_args(["train", "mnist-28", "--data", "fashion-mnist", "--kimg", "3", "--seed", "5",
                                      "--data-root", "/data", "--batch-size", "32"])
    cfg = resolve_train_config(args)
    assert (cfg.data.source, cfg.data.root, cfg.train.seed, cfg.train.batch_size) == ("fashion-mnist", "/data", 5, 32)
    assert cfg.train.phases[0].kimg == 3.0
    folder = resolve_train_config(build_parser().parse_args(["train", "--data", "my images/"]))
    # the path is saved absolute (evaluate finds it from anywhere), the run named after the data
    assert (folder.data.source, folder.data.path) == ("folder", str(Path("my images").resolve()))
    assert folder.name == "my images-dcgan" and cfg.name == "fashion-mnist-dcgan"


def test_train_sample_interpolate_info(run_dir, tmp_path, capsys):
    assert (run_dir / "snapshot.safetensors").is_file()
    grid = tmp_path / "grid.png"
    assert main(["sample", str(run_dir), "--seeds", "0-8", "--grid", str(grid), "--device", "cpu"]) == 0
    with Image.open(grid) as im:  # 3x3 tiles of 16 px + 2 px padding, enlarged 4x for display
        assert im.size == (4 * (3 * 18 + 2), 4 * (3 * 18 + 2))
    out = tmp_path / "imgs"
    assert main(["sample", str(run_dir / "snapshot.safetensors"), "--seeds", "3,1", "--out", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["seed000001.png", "seed000003.png"]
    with Image.open(out / "seed000001.png") as im:
        assert im.size == (16, 16)
    strip = tmp_path / "lerp"
    assert main(["interpolate", str(run_dir), "--seeds", "0,1,2", "--frames", "4", "--out", str(strip)]) == 0
    with Image.open(tmp_path / "lerp.gif") as gif:
        assert gif.n_frames == 9
    with Image.open(tmp_path / "lerp.png") as im:
        assert im.size == (4 * (9 * 18 + 2), 4 * 20)  # one row of 9 frames
    capsys.readouterr()
    assert main(["info", str(run_dir)]) == 0
    text = capsys.readouterr().out
    assert "training state: step 4" in text and "Total params" in text and "snapshot" in text


def test_resume_latest_extends_the_schedule(run_dir, capsys):
    runs = run_dir.parent
    assert main(["train", "--resume", "latest", "--runs-dir", str(runs), "--set", "train.phases=[{steps: 6}]",
                 "--no-progress"]) == 0
    lines = [json.loads(x) for x in (run_dir / "stats.jsonl").read_text().splitlines()]
    assert lines[-1]["step"] == 6
    assert len(list(runs.iterdir())) == 1  # continued in place


@pytest.mark.parametrize(("argv", "message"), [
    (["train", "--data", "/no/such/folder", "--dry-run"], None),  # a dry run does not read data
    (["train", "--data", "/no/such/folder"], "/no/such/folder"),
    (["train", "--set", "model.upsample=deconv"], "model.upsample='deconv' is not one of"),
    (["train", "seed-64"], "needs data.path"),
    (["train", "nonexistent-preset"], "neither a preset"),
    (["sample", "/no/snapshot.safetensors"], "no such snapshot file"),
    (["sample", ".", "--seeds", "9-1"], "runs backwards"),
    (["train", "--resume", "/no/run"], "no such run directory"),
])
def test_bad_input_is_one_error_line_and_status_2(argv, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    status = main(argv)
    err = capsys.readouterr().err
    if message is None:
        assert status == 0
        return
    assert status == 2
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0]


def test_python_dash_m_entry_point():
    result = subprocess.run([sys.executable, "-m", "deconvgan", "presets"], capture_output=True, text=True, check=True)
    assert "mnist-28" in result.stdout.split()
