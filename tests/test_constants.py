"""One source for each constant: every config choice list is tied to the code that implements it, and
each shared literal (run-directory names, the Stacked MNIST mode count, atomic writes, process-group
teardown, the benchmarks' data root) has exactly one definition in the source tree."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import torch

from deconvgan import config, runfiles
from deconvgan.data.load import _LOADERS
from deconvgan.errors import ConfigError
from deconvgan.losses import LOSSES as LOSS_REGISTRY
from deconvgan.metrics.evaluate import METRICS
from deconvgan.models import MODEL_REGISTRY, build_generator
from deconvgan.models.mlp import make_activation
from deconvgan.models.upsample import ResizeConvUpsample, make_upsample
from deconvgan.training.evaluation import BEST_KEYS

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "deconvgan"


# --- choice lists against their registries ----------------------------------------------------------


def test_loss_choices_are_the_loss_registry() -> None:
    assert config.LOSSES == tuple(LOSS_REGISTRY)


def test_architecture_choices_are_the_model_registry() -> None:
    assert config.ARCHITECTURES == tuple(MODEL_REGISTRY)


def test_data_source_choices_are_the_loaders() -> None:
    assert config.DATA_SOURCES == tuple(_LOADERS)


def test_training_metric_choices_have_a_best_key_and_a_metric() -> None:
    assert tuple(BEST_KEYS) == config.TRAINING_METRICS
    assert set(config.TRAINING_METRICS) <= set(METRICS), "each run.metric must be a metric evaluate() computes"


@pytest.mark.parametrize("mode", config.UPSAMPLERS)
def test_every_upsampler_choice_is_built_and_doubles_the_side(mode: str) -> None:
    block = make_upsample(mode, 3, 2, 4)
    assert block(torch.zeros(1, 3, 5, 5)).shape == (1, 2, 10, 10)
    assert build_generator(config.ModelConfig(upsample=mode, g_width=8, max_width=16, latent_dim=4))(
        torch.zeros(2, 4)).shape == (2, 1, 16, 16)


def test_an_upsampler_outside_the_choices_is_refused() -> None:
    with pytest.raises(ConfigError, match="upsample='bicubic' is not one of transposed, resize, pixelshuffle"):
        make_upsample("bicubic", 3, 2, 4)


def test_resize_mode_choices_are_distinct_interpolations() -> None:
    torch.manual_seed(0)
    x = torch.rand(1, 1, 3, 3)
    outputs = []
    for mode in config.RESIZE_MODES:
        block = ResizeConvUpsample(1, 1, 3, mode=mode)
        torch.nn.init.dirac_(block.conv.weight)  # the conv passes the resized map through unchanged
        torch.nn.init.zeros_(block.conv.bias)
        outputs.append(block(x))
    expected = [torch.nn.functional.interpolate(x, scale_factor=2, mode=m,
                                                align_corners=False if m == "bilinear" else None)
                for m in config.RESIZE_MODES]
    for got, want in zip(outputs, expected, strict=True):
        torch.testing.assert_close(got, want)
    assert not torch.equal(outputs[0], outputs[1])
    with pytest.raises(ConfigError, match="resize mode='area' is not one of nearest, bilinear"):
        ResizeConvUpsample(1, 1, 3, mode="area")


@pytest.mark.parametrize("name", config.MLP_ACTIVATIONS)
def test_every_mlp_activation_choice_is_built(name: str) -> None:
    assert isinstance(make_activation(name), torch.nn.Module)


# --- one definition per literal ----------------------------------------------------------------------


def _python_files(*folders: Path) -> list[Path]:
    return sorted(p for folder in folders for p in folder.rglob("*.py"))


def _string_constants(path: Path) -> list[str]:
    return [node.value for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
            if isinstance(node, ast.Constant) and isinstance(node.value, str)]


RUN_FILE_NAMES = {name: value for name, value in vars(runfiles).items() if name.isupper() and isinstance(value, str)}
# The same word with another meaning, not a run-directory name: (literal, file) -> what it is there.
OTHER_MEANINGS = {
    ("samples", "src/deconvgan/cli.py"): "the default folder of `deconvgan sample --out`",
    ("samples", "src/deconvgan/training/outputs.py"): "the TensorBoard tag of the sample grids",
}


@pytest.mark.parametrize("name", sorted(RUN_FILE_NAMES))
def test_run_directory_names_are_written_once(name: str) -> None:
    literal = RUN_FILE_NAMES[name]
    holders = [p.relative_to(ROOT).as_posix() for p in _python_files(SRC, ROOT / "benchmarks", ROOT / "tools")
               if literal in _string_constants(p)]
    holders = [h for h in holders if (literal, h) not in OTHER_MEANINGS]
    assert holders == ["src/deconvgan/runfiles.py"], f"{literal!r} ({name}) spelled out in {holders}"


def _calls_and_assignments(path: Path) -> tuple[set[str], set[str]]:
    """Dotted names called (``os.replace``, ``dist.destroy_process_group``) and module-level names assigned."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    called = {ast.unparse(node.func) for node in ast.walk(tree) if isinstance(node, ast.Call)}
    assigned = {target.id for node in tree.body if isinstance(node, (ast.Assign, ast.AnnAssign))
                for target in (node.targets if isinstance(node, ast.Assign) else [node.target])
                if isinstance(target, ast.Name)}
    return called, assigned


def _holders(predicate, *folders: Path) -> list[str]:
    return [p.relative_to(ROOT).as_posix() for p in _python_files(*folders) if predicate(*_calls_and_assignments(p))]


def test_num_modes_is_defined_once() -> None:
    assert _holders(lambda called, assigned: "NUM_MODES" in assigned, SRC) == ["src/deconvgan/data/stacked.py"]


@pytest.mark.parametrize("call", ["os.replace", "tempfile.mkstemp"])
def test_atomic_writes_live_in_one_module(call: str) -> None:
    assert _holders(lambda called, assigned: call in called, SRC) == ["src/deconvgan/atomic.py"]


@pytest.mark.parametrize("call", ["destroy_process_group", "init_process_group"])
def test_the_process_group_is_joined_and_left_in_one_module(call: str) -> None:
    holders = _holders(lambda called, assigned: any(c.endswith(call) for c in called),
                       SRC, ROOT / "tests", ROOT / "benchmarks")
    assert [h for h in holders if not h.startswith("tests/training/test_side_effects")] == \
        ["src/deconvgan/distributed.py"]


def test_the_benchmarks_find_their_data_in_one_place() -> None:
    bench = ROOT / "benchmarks"
    holders = [p.relative_to(ROOT).as_posix() for p in _python_files(bench)
               if {"shared", "DECONVGAN_DATA_ROOT"} & set(_string_constants(p))]
    assert holders == ["benchmarks/_runs.py"]
    assert "DECONVGAN_DATA_ROOT" not in _string_constants(bench / "_runs.py"), "import DATA_ROOT_ENV instead"


def test_the_default_runs_directory_is_the_config_default() -> None:
    assert config.RunConfig().runs_dir == runfiles.DEFAULT_RUNS_DIR
