"""The config is two modules: the schema (deconvgan.config) and the loader (deconvgan.configio)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from deconvgan import config, configio
from deconvgan.config import Config
from deconvgan.configio import config_to_yaml, load_config, read_config_source
from deconvgan.data import data_arg
from deconvgan.errors import ConfigError

SRC = Path(__file__).resolve().parents[1] / "src" / "deconvgan"


def _deconvgan_imports(module: str) -> set[str]:
    tree = ast.parse((SRC / f"{module}.py").read_text(encoding="utf-8"))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("deconvgan"):
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("deconvgan"))
    return found


# The schema grows a few lines with each knob (split it by section when a part passes ~300: the model
# section already has its own module); a loader creeping back in would add ~150 at once.
@pytest.mark.parametrize(("module", "most"), [("config", 300), ("modelconfig", 300), ("augmentconfig", 300),
                                                    ("configio", 300)])
def test_each_half_stays_short(module: str, most: int) -> None:
    lines = len((SRC / f"{module}.py").read_text(encoding="utf-8").splitlines())
    assert lines <= most, f"{module}.py has {lines} lines (at most {most}): move what is not its concept out"


def test_the_schema_holds_no_loader() -> None:
    loader_names = ["from_dict", "apply_overrides", "read_yaml", "preset_names", "read_config_source",
                    "load_config", "config_to_yaml", "data_arg", "PRESET_PACKAGE"]
    assert [name for name in loader_names if hasattr(config, name)] == []
    assert isinstance(config.TRAINING_METRICS, tuple)  # the choice list only; the result keys live in training


def test_imports_point_down() -> None:
    # the schema (modelconfig under config) is the bottom of the graph beside errors and runfiles;
    # configio sits right above it.
    assert _deconvgan_imports("modelconfig") <= {"deconvgan.errors"}
    assert _deconvgan_imports("augmentconfig") <= {"deconvgan.errors", "deconvgan.modelconfig"}
    assert _deconvgan_imports("config") <= {"deconvgan.errors", "deconvgan.runfiles", "deconvgan.modelconfig",
                                            "deconvgan.augmentconfig"}
    assert _deconvgan_imports("configio") <= {"deconvgan.config", "deconvgan.errors"}


def test_the_schema_imports_neither_yaml_nor_torch() -> None:
    code = "import sys, deconvgan.config; print(sorted(m for m in ('yaml', 'torch') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_load_config_layers_defaults_preset_and_overrides() -> None:
    preset = read_config_source("mnist-28")
    cfg = load_config("mnist-28", ["train.batch_size=32", "loss.kind=hinge"])
    assert cfg.name == preset["name"] and cfg.model.resolution == preset["model"]["resolution"] == 28
    assert (cfg.train.batch_size, cfg.loss.kind) == (32, "hinge")
    assert cfg.train.g_lr == config.TrainConfig().g_lr or "g_lr" in preset.get("train", {})


def test_yaml_round_trip_is_exact(tmp_path: Path) -> None:
    cfg = load_config(None, ["train.phases=[{kimg: 1.5}, {steps: 3, train_d: false, name: polish}]",
                             "train.g_lr=1e-4", "model.upsample=resize", "model.resize_mode=bilinear"])
    path = tmp_path / "c.yaml"
    path.write_text(config_to_yaml(cfg))
    again = load_config(path)
    assert again == cfg and isinstance(again, Config)


def test_from_dict_refuses_a_typo_by_name() -> None:
    with pytest.raises(ConfigError, match=r"unknown config key train\.batchsize; known keys: .*batch_size"):
        configio.from_dict(Config, {"train": {"batchsize": 3}})


@pytest.mark.parametrize(("value", "expected"), [
    ("mnist", {"source": "mnist"}),
    ("stacked-mnist", {"source": "stacked-mnist"}),
    ("folder", {"source": "folder", "path": "folder"}),  # a folder literally named "folder"
    ("photos/cats", {"source": "folder", "path": "photos/cats"}),
])
def test_data_arg_is_a_source_or_a_folder(value: str, expected: dict[str, str]) -> None:
    assert data_arg(value) == expected
    assert load_config(None, [f"data.{k}={v}" for k, v in expected.items()]).data.source == expected["source"]
