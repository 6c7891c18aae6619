"""A corpus of bad inputs, each given to every command that takes it: one ``error:`` line, a non-zero status,
no traceback, and a pickle's payload never runs (its marker file is never created)."""

from __future__ import annotations

import json
import pickle
import shutil
import struct
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from deconvgan.checkpoint import CHECKSUM_KEY
from deconvgan.cli import main

TINY = ["--no-progress", "--device", "cpu", "--set", "model.g_width=8", "--set", "model.d_width=8",
        "--set", "model.max_width=16", "--set", "model.latent_dim=8", "--set", "run.grid_size=4",
        "--set", "run.tensorboard=false", "--set", "train.batch_size=8", "--set", "train.phases=[{steps: 3}]"]


class _Payload:
    """Unpickling this creates the marker file: proof that a loader ran code from the file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


@pytest.fixture(scope="module")
def good_run(tmp_path_factory) -> Path:
    runs = tmp_path_factory.mktemp("good") / "runs"
    assert main(["train", "--runs-dir", str(runs), *TINY]) == 0
    (run,) = runs.iterdir()
    return run


def _read(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    with safe_open(str(path), framework="pt") as f:
        return {k: f.get_tensor(k) for k in f.keys()}, dict(f.metadata())  # noqa: SIM118


def _rewrite(source: Path, target: Path, tensors=None, metadata=None, *, keep_checksums: bool = False) -> Path:
    """``source`` with some tensors or metadata replaced; checksums dropped (as in files older than them)
    unless ``keep_checksums``, so that each later check is reached."""
    old_tensors, old_meta = _read(source)
    meta = {**old_meta, **(metadata or {})}
    if not keep_checksums:
        meta.pop(CHECKSUM_KEY, None)
    save_file({**old_tensors, **(tensors or {})}, str(target), metadata=meta)
    return target


def _flip_bytes(source: Path, target: Path) -> Path:
    data = bytearray(source.read_bytes())
    header_len = struct.unpack("<Q", data[:8])[0]
    middle = 8 + header_len + (len(data) - 8 - header_len) // 2  # inside the tensor data
    for i in range(middle, middle + 3):
        data[i] ^= 0x5A
    target.write_bytes(bytes(data))
    return target


def _first_weight(path: Path, prefix: str = "") -> str:
    tensors, _ = _read(path)
    return next(k for k, v in tensors.items() if k.startswith(prefix) and v.is_floating_point() and v.dim() > 1)


def _snapshots(run: Path, out: Path, marker: Path) -> dict[str, Path]:
    snap = run / "snapshot.safetensors"
    weight = _first_weight(snap)
    tensors, meta = _read(snap)
    evil = out / "evil.safetensors"
    evil.write_bytes(pickle.dumps(_Payload(marker)))
    truncated = out / "truncated.safetensors"
    truncated.write_bytes(snap.read_bytes()[: snap.stat().st_size // 2])
    model = json.loads(meta["model"])
    return {
        "pickle": evil,
        "truncated": truncated,
        "empty": out / "empty.safetensors",  # written empty by the fixture
        "flipped": _flip_bytes(snap, out / "flipped.safetensors"),
        "format_version": _rewrite(snap, out / "fv.safetensors", metadata={"format_version": "one"},
                                   keep_checksums=True),
        "format_version_float": _rewrite(snap, out / "fv2.safetensors", metadata={"format_version": "1.5"}),
        "model_not_json": _rewrite(snap, out / "model.safetensors", metadata={"model": "{not json"}),
        "wrong_shape": _rewrite(snap, out / "shape.safetensors",
                                metadata={"model": json.dumps({**model, "latent_dim": 9})}),
        "step_not_int": _rewrite(snap, out / "step.safetensors", metadata={"step": "[1]"}),
        "nan": _rewrite(snap, out / "nan.safetensors", {weight: torch.full_like(tensors[weight], float("nan"))}),
        "integer": _rewrite(snap, out / "int.safetensors", {weight: tensors[weight].to(torch.int32)}),
        "half": _rewrite(snap, out / "half.safetensors", {weight: tensors[weight].half()}),
        "missing_checksum_of_a_tensor": _rewrite(snap, out / "sums.safetensors", metadata={
            CHECKSUM_KEY: json.dumps({k: v for k, v in json.loads(meta[CHECKSUM_KEY]).items() if k != weight})},
            keep_checksums=True),
        "not_a_file": out,
    }


@pytest.fixture(scope="module")
def corpus(good_run, tmp_path_factory) -> tuple[dict[str, Path], Path]:
    out = tmp_path_factory.mktemp("corpus")
    marker = out / "MARKER"
    snapshots = _snapshots(good_run, out, marker)
    (out / "empty.safetensors").write_bytes(b"")
    return snapshots, marker


def _run(argv: list[str], capsys) -> tuple[int, list[str]]:
    try:
        status = main(argv)
    except SystemExit as exc:  # argparse's own errors
        status = exc.code
    err = capsys.readouterr().err
    return status, [line for line in err.splitlines() if line.strip()]


def _assert_one_error_line(status: int, lines: list[str], *fragments: str) -> None:
    assert status == 2, lines
    assert len(lines) == 1 and lines[0].startswith("error: "), lines
    assert "Traceback" not in lines[0]
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


SNAPSHOT_CASES = {
    "pickle": "not a readable snapshot",
    "truncated": "not a readable snapshot",
    "empty": "not a readable snapshot",
    "flipped": "fails its checksum",
    "format_version": "'format_version' is 'one', not an integer",
    "format_version_float": "'format_version' is '1.5', not an integer",
    "model_not_json": "'model' is missing or not JSON",
    "wrong_shape": "has shape",
    "step_not_int": "'step' is '[1]', not an integer",
    "nan": "holds NaN or infinite values",
    "integer": "is int32, the architecture needs float32",
    "half": "is float16, the architecture needs float32",
    "missing_checksum_of_a_tensor": "checksums do not list its tensors",
    "not_a_file": "run directory without snapshot.safetensors",
}
COMMANDS = {
    "sample": ["sample", "{}", "--seeds", "0-1"],
    "interpolate": ["interpolate", "{}", "--seeds", "0,1", "--frames", "2", "--out", "{out}/lerp"],
    "info": ["info", "{}"],
    "export": ["export", "{}", "--no-check", "--out", "{out}/model.onnx"],
    "evaluate": ["evaluate", "{}", "--metrics", "spectral", "--num-generated", "4", "--num-real", "4"],
    "texture": ["texture", "{}", "--size", "64"],
}


@pytest.mark.parametrize("case", sorted(SNAPSHOT_CASES))
@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_a_bad_snapshot_is_one_error_line_for_every_command(corpus, case, command, capsys, tmp_path):
    files, marker = corpus
    if case == "not_a_file" and command == "info":
        pytest.skip("info describes any directory as a run directory (exit 0), snapshot or not")
    argv = [a.format(files[case], out=tmp_path) for a in COMMANDS[command]]
    status, lines = _run(argv, capsys)
    _assert_one_error_line(status, lines, SNAPSHOT_CASES[case])
    assert not marker.exists(), "a payload ran"


def _state_copy(good_run: Path, tmp_path: Path, **change) -> Path:
    run = tmp_path / "run"
    shutil.copytree(good_run, run)
    state = run / "training-state.safetensors"
    tensors, meta = change.pop("tensors", None), change.pop("metadata", None)
    if change.pop("pickle", None):
        state.write_bytes(pickle.dumps(_Payload(tmp_path / "MARKER")))
    elif change.pop("flip", None):
        _flip_bytes(good_run / "training-state.safetensors", state)
    else:
        _rewrite(good_run / "training-state.safetensors", state, tensors, meta)
    return run


STATE_CASES = {
    "pickle": ({"pickle": True}, "not a readable"),  # info cannot tell what it was meant to be
    "flipped": ({"flip": True}, "fails its checksum"),
    "format_version": ({"metadata": {"format_version": "v1"}}, "'format_version' is 'v1', not an integer"),
    "empty_param_groups": ({"metadata": {"opt_g.param_groups": "[]"}}, "not a non-empty list of parameter groups"),
    "param_groups_of_another_model": ({"metadata": {"opt_d.param_groups": json.dumps(
        [{"params": [0], "lr": 1e-3, "betas": [0.5, 0.999]}])}}, "optimizer state does not fit"),
    "negative_step": ({"metadata": {"step": "-4"}}, "step -4 lies outside its own schedule"),
    "step_beyond_schedule": ({"metadata": {"step": "4000"}}, "step 4000 lies outside its own schedule"),
    "nan_adam_moment": ({"tensors": "nan-adam"}, "holds NaN or infinite values"),
}


@pytest.mark.parametrize("case", sorted(STATE_CASES))
def test_a_bad_training_state_is_one_error_line_for_resume_and_info(good_run, tmp_path, case, capsys):
    change, fragment = STATE_CASES[case]
    change = dict(change)
    if change.get("tensors") == "nan-adam":
        tensors, _ = _read(good_run / "training-state.safetensors")
        key = next(k for k in tensors if k.startswith("opt_g.state.") and k.endswith("exp_avg"))
        change["tensors"] = {key: torch.full_like(tensors[key], float("nan"))}
    run = _state_copy(good_run, tmp_path, **change)
    commands = [["train", "--resume", str(run), "--no-progress"]]
    if case != "param_groups_of_another_model":  # info reads the groups but loads no optimizer
        commands += [["info", str(run / "training-state.safetensors")], ["info", str(run)]]
    for argv in commands:
        status, lines = _run(argv, capsys)
        _assert_one_error_line(status, lines, fragment)
    assert not (tmp_path / "MARKER").exists(), "a payload ran"


def test_a_step_beyond_this_sessions_schedule_is_refused(good_run, tmp_path, capsys):
    run = _state_copy(good_run, tmp_path)
    status, lines = _run(["train", "--resume", str(run), "--no-progress", "--set", "train.phases=[{steps: 2}]"],
                         capsys)
    _assert_one_error_line(status, lines, "the run is at step 3, beyond this config's schedule of 2 steps")


def test_info_on_a_training_state_says_what_it_holds_and_points_at_the_run(good_run, capsys):
    assert main(["info", str(good_run / "training-state.safetensors")]) == 0
    out = capsys.readouterr().out
    assert "step 3 of 3" in out and f"deconvgan info {good_run}" in out


BAD_VALUES = [
    ["train", "--kimg", "nan"], ["train", "--kimg", "inf", "--dry-run"], ["train", "--kimg", "-inf", "--dry-run"],
    ["train", "--kimg", "-1", "--dry-run"], ["train", "--kimg", "0", "--dry-run"],
    ["train", "--kimg", "1e300", "--dry-run"], ["train", "--batch-size", "0", "--dry-run"],
    ["train", "--batch-size", "-8", "--dry-run"], ["train", "--batch-size", "1e3", "--dry-run"],
    ["train", "--batch-size", "99999999999999", "--dry-run"], ["train", "--seed", "-1", "--dry-run"],
    ["train", "--seed", "99999999999999999999999", "--dry-run"], ["train", "--threads", "0", "--dry-run"],
    ["train", "--set", "train.g_lr=nan", "--dry-run"], ["train", "--set", "train.g_lr=.inf", "--dry-run"],
    ["train", "--set", "run.log_every_kimg=.nan", "--dry-run"], ["train", "--set", "loss.r1_gamma=-.inf", "--dry-run"],
    ["train", "--set", "train.phases=[{kimg: .inf}]", "--dry-run"],
    ["train", "--set", "train.rollback_lr_factor=2", "--dry-run"],
    ["train", "--set", "train.on_divergence=ignore", "--dry-run"],
    ["sample", "{snap}", "--seeds", "0-99999999999"], ["sample", "{snap}", "--truncation", "nan"],
    ["sample", "{snap}", "--truncation", "inf"], ["sample", "{snap}", "--truncation", "0"],
    ["sample", "{snap}", "--truncation", "-1"], ["sample", "{snap}", "--batch-size", "0"],
    ["sample", "{snap}", "--scale", "100000"], ["sample", "{snap}", "--grid", "{out}/no/such/dir/grid.png"],
    ["sample", "{snap}", "--grid", "{out}/grid.jpg"],
    ["interpolate", "{snap}", "--frames", "0"], ["interpolate", "{snap}", "--frame-ms", "-5"],
    ["interpolate", "{snap}", "--truncation", "nan"],
    ["evaluate", "{snap}", "--num-generated", "0"], ["evaluate", "{snap}", "--num-real", "-1"],
    ["evaluate", "{snap}", "--threads", "0"], ["texture", "{snap}", "--tile", "0"],
    ["texture", "{snap}", "--seed", "-2"], ["export", "{snap}", "--opset", "nan"],
]


@pytest.mark.parametrize("argv", BAD_VALUES, ids=" ".join)
def test_every_bad_value_is_one_error_line_and_status_2(good_run, argv, capsys, tmp_path):
    argv = [a.replace("{snap}", str(good_run / "snapshot.safetensors")).replace("{out}", str(tmp_path)) for a in argv]
    status, lines = _run(argv, capsys)
    _assert_one_error_line(status, lines)
    assert not list(tmp_path.iterdir()), "nothing is written for a refused command"


@pytest.mark.parametrize("name, content", [
    ("zero.png", b""), ("text.png", b"this is not an image"), ("cut.png", None), ("cut.jpg", None),
])
def test_a_broken_image_in_a_folder_is_one_error_line_and_leaves_no_run_directory(tmp_path, capsys, name, content):
    from PIL import Image

    folder = tmp_path / "images"
    folder.mkdir()
    for i in range(3):
        Image.new("RGB", (20, 20), (i * 40, 0, 0)).save(folder / f"good{i}.png")
    if content is None:  # a real image cut in half
        Image.new("RGB", (64, 64), (9, 9, 9)).save(folder / name)
        data = (folder / name).read_bytes()
        content = data[: len(data) // 2]
    (folder / name).write_bytes(content)
    status, lines = _run(["train", "--data", str(folder), "--runs-dir", str(tmp_path / "runs"), *TINY], capsys)
    _assert_one_error_line(status, lines, name)
    assert not (tmp_path / "runs").exists() or not list((tmp_path / "runs").iterdir())


def test_an_empty_folder_is_one_error_line(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    status, lines = _run(["train", "--data", str(tmp_path / "empty"), "--runs-dir", str(tmp_path / "runs"), *TINY],
                         capsys)
    _assert_one_error_line(status, lines, str(tmp_path / "empty"))
    assert not list((tmp_path / "runs").iterdir())


def test_the_parsing_layer_refuses_bad_numbers_itself(capsys):
    # the parser names the flag: the values never reach the config or the library (which refuse them too)
    for argv, flag in ((["train", "--kimg", "nan", "--dry-run"], "--kimg"),
                       (["sample", "x", "--truncation", "inf"], "--truncation"),
                       (["train", "--batch-size", "99999999999999", "--dry-run"], "--batch-size")):
        status, lines = _run(argv, capsys)
        _assert_one_error_line(status, lines, f"argument {flag}:")


def test_the_library_refuses_bad_seeds_and_truncations_too():
    from deconvgan.errors import ConfigError
    from deconvgan.sampling import MAX_SEEDS, latents_for_seeds, parse_seeds

    assert len(parse_seeds(f"0-{MAX_SEEDS - 1}")) == MAX_SEEDS
    with pytest.raises(ConfigError, match=f"more than {MAX_SEEDS} images"):
        parse_seeds(f"5,0-{MAX_SEEDS - 1}")
    for bad in (float("nan"), float("inf"), 0.0, -1.0):
        with pytest.raises(ConfigError, match="must be a finite number > 0"):
            latents_for_seeds([0], 4, bad)
