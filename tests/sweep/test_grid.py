"""The sweep's grid: --vary parsing, expansion, row names, and refusal of bad keys and values before any run."""

from __future__ import annotations

from pathlib import Path

import pytest

from deconvgan.cli import main
from deconvgan.errors import ConfigError
from deconvgan.sweep.grid import Axis, expand, parse_seed_list, parse_variants, parse_vary, split_values
from deconvgan.sweep.plan import SweepPlan, load_plan, save_plan


def test_parse_vary_keeps_values_as_written_and_lists_whole() -> None:
    assert parse_vary("model.kernel_size=3,4, 5") == Axis("model.kernel_size", ("3", "4", "5"))
    assert split_values("[1, 2],[3],x") == ["[1, 2]", "[3]", "x"]
    assert parse_vary("train.betas=[0.5, 0.999],[0.0, 0.99]").values == ("[0.5, 0.999]", "[0.0, 0.99]")


@pytest.mark.parametrize("text,message", [
    ("model.kernel_size", r"must look like section.key=value1,value2"),
    ("model.kernel_size=", r"must look like"),
    ("model.kernel_size=3,,4", r"empty value"),
    ("model.kernel_size=3,3", r"lists 3 twice"),
    ("model kernel=3", r"not a dotted config key"),
    ("train.seed=0,1", r"sets train.seed itself: use --seeds"),
])
def test_parse_vary_refuses_malformed_flags(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_vary(text)


def test_expansion_is_seed_major_with_readable_unique_names() -> None:
    axes = [parse_vary("model.kernel_size=3,5"), parse_vary("model.g_depth=0,1")]
    rows = expand(axes, (0, 1))
    assert [r.name for r in rows[:4]] == ["kernel_size-3__g_depth-0__seed-0", "kernel_size-3__g_depth-1__seed-0",
                                          "kernel_size-5__g_depth-0__seed-0", "kernel_size-5__g_depth-1__seed-0"]
    assert rows[4].name == "kernel_size-3__g_depth-0__seed-1" and len(rows) == 8
    assert rows[4].combination == rows[0].combination == "kernel_size-3__g_depth-0"
    assert rows[1].overrides == ("model.kernel_size=3", "model.g_depth=1") and rows[1].seed == 0


def test_names_are_folder_safe_and_disambiguated() -> None:
    # two axes ending in the same word keep their full keys; a path-like value becomes safe
    rows = expand([parse_vary("train.g_lr=1e-4"), parse_vary("loss.kind=non-saturating,hinge"),
                   parse_vary("data.path=a/b")], (3,))
    assert rows[0].name == "g_lr-1e-4__kind-non-saturating__path-a_b__seed-3"
    same_leaf = expand([parse_vary("train.x=1"), parse_vary("model.x=2")], (0,))
    assert same_leaf[0].name == "train.x-1__model.x-2__seed-0"
    with pytest.raises(ConfigError, match=r"share the folder name"):
        expand([parse_vary("data.path=a/b,a_b")], (0,))


def test_seed_lists() -> None:
    assert parse_seed_list("0-2,7") == (0, 1, 2, 7)
    with pytest.raises(ConfigError, match=r"names a seed twice"):
        parse_seed_list("0,1,1")


PLAN = SweepPlan(base="digits", axes=(parse_vary("model.kernel_size=3,5"), parse_vary("model.g_depth=0,2")),
                 seeds=(0, 1), kimg=0.1, sets=("model.g_width=8",))


def test_validate_builds_every_row_config_as_train_does() -> None:
    rows = PLAN.validate()
    cfg = PLAN.config_of(rows[-1].seed, rows[-1].overrides)
    assert (cfg.model.kernel_size, cfg.model.g_depth, cfg.train.seed, cfg.model.g_width) == (5, 2, 1, 8)
    assert cfg.train.total_steps == 2  # 0.1 kimg at the digits preset's batch of 64


@pytest.mark.parametrize("vary,message", [
    ("model.kernal_size=3,4", r"^--vary model.kernal_size=3: unknown config key model.kernal_size"),
    ("model.kernel_size=4,1", r"^--vary model.kernel_size=1: model.kernel_size=1 must be >= 2"),
    ("model.upsample=transposed,deconv", r"^--vary model.upsample=deconv: model.upsample='deconv' is not one of"),
    ("model.kernel_size=4,4.0", r"model.kernel_size=4 and model.kernel_size=4.0 give the same config"),
])
def test_bad_key_or_value_is_refused_naming_it(vary: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        SweepPlan(base="digits", axes=(parse_vary(vary),)).validate()


def test_a_bad_combination_is_refused_naming_it() -> None:
    plan = SweepPlan(base="digits", axes=(parse_vary("model.arch=dcgan,mlp"), parse_vary("model.d_depth=0,1")))
    with pytest.raises(ConfigError, match=r"^--vary combination model.arch=mlp model.d_depth=1: model.d_depth=1"):
        plan.validate()


def test_the_command_refuses_before_anything_runs(tmp_path: Path, capsys) -> None:
    sweeps = tmp_path / "sweeps"
    status = main(["sweep", "digits", "--vary", "model.kernel_size=3,4", "--vary", "model.g_widht=8,16",
                   "--sweeps-dir", str(sweeps)])
    err = capsys.readouterr().err
    assert status == 2 and err.startswith("error: --vary model.g_widht=8: unknown config key model.g_widht")
    assert len(err.strip().splitlines()) == 1 and not sweeps.exists()  # nothing created, nothing trained
    assert main(["sweep", "digits", "--vary", "model.kernel_size=3", "--metrics", "fid,sharpness",
                 "--sweeps-dir", str(sweeps)]) == 2
    err = capsys.readouterr().err
    assert "sharpness" in err and "is not one of" in err and not sweeps.exists()
    assert main(["sweep", "--resume", str(tmp_path), "--kimg", "5"]) == 2
    assert "drop --kimg" in capsys.readouterr().err


def test_dry_run_lists_rows(tmp_path: Path, capsys) -> None:
    assert main(["sweep", "digits", "--vary", "model.kernel_size=3,5", "--seeds", "0-1", "--kimg", "1", "--jobs", "2",
                 "--sweeps-dir", str(tmp_path), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("4 rows (2 combinations x 2 seed(s)), 2 job(s)")
    assert "kernel_size-5__seed-1" in out and "model.kernel_size=5 train.seed=1" in out
    assert list(tmp_path.iterdir()) == []


def test_plan_round_trips_through_the_sweep_folder(tmp_path: Path) -> None:
    saved = save_plan(PLAN, tmp_path)
    loaded = load_plan(tmp_path)
    assert loaded == saved and loaded.base == str((tmp_path / "base.yaml").resolve())
    assert loaded.rows() == PLAN.rows()
    # the rows train from the copied base: the same configs as from the preset
    assert loaded.config_of(1, ["model.kernel_size=5"]) == PLAN.config_of(1, ["model.kernel_size=5"])
    (tmp_path / "sweep.json").write_text('{"format": "something else"}')
    with pytest.raises(ConfigError, match=r"is not a deconvgan sweep plan"):
        load_plan(tmp_path)


def test_linked_keys_take_each_value_together() -> None:
    axis = parse_vary("model.g_depth+model.d_depth=0,2")
    assert axis.keys == ("model.g_depth", "model.d_depth")
    plan = SweepPlan(base="digits", axes=(parse_vary("model.kernel_size=3"), axis))
    rows = plan.validate()
    assert [r.name for r in rows] == ["kernel_size-3__g_depth+d_depth-0__seed-0",
                                      "kernel_size-3__g_depth+d_depth-2__seed-0"]
    cfg = plan.config_of(0, rows[1].overrides)
    assert (cfg.model.g_depth, cfg.model.d_depth) == (2, 2)
    with pytest.raises(ConfigError, match=r"model.kernel_size is given twice"):
        expand([parse_vary("model.kernel_size=3"), parse_vary("model.g_depth+model.kernel_size=0,1")], (0,))
    with pytest.raises(ConfigError, match=r"^--vary model.g_depth\+model.d_dept=0: unknown config key model.d_dept"):
        SweepPlan(base="digits", axes=(parse_vary("model.g_depth+model.d_dept=0"),)).validate()


def test_named_variants_are_one_axis_of_recipes_crossed_with_the_others(tmp_path: Path) -> None:
    variants = parse_variants([["base"], ["hinge-sn", "loss.kind=hinge", "model.d_norm=spectral"],
                               ["wide", "model.g_width=16", "model.d_width=16"]])
    assert variants.keys == ("loss.kind", "model.d_norm", "model.g_width", "model.d_width")
    plan = SweepPlan(base="digits", axes=(variants, parse_vary("model.kernel_size=3,5")), seeds=(0, 1))
    rows = plan.validate()
    assert len(rows) == 12 and rows[2].name == "variant-hinge-sn__kernel_size-3__seed-0"
    assert rows[2].overrides == ("loss.kind=hinge", "model.d_norm=spectral", "model.kernel_size=3")
    assert rows[0].overrides == ("model.kernel_size=3",)  # the base: nothing but the other axes
    cfg = plan.config_of(1, rows[-1].overrides)
    assert (cfg.model.g_width, cfg.model.d_width, cfg.model.kernel_size, cfg.loss.kind) == (16, 16, 5, "nonsaturating")
    # the plan keeps each variant's overrides, so a resumed sweep runs the same recipes
    saved = save_plan(plan, tmp_path)
    assert load_plan(tmp_path).rows() == saved.rows() == rows
    assert "hinge-sn: loss.kind=hinge model.d_norm=spectral" in variants.flag


@pytest.mark.parametrize("given,message", [
    ([["a=b"]], r"the name 'a=b' comes first"),
    ([["a"], ["a", "loss.kind=hinge"]], r"the variant a is given twice"),
    ([["a", "loss.kind"]], r"'loss.kind' must look like section.key=value"),
    ([["a", "loss.kind=hinge", "loss.kind=minimax"]], r"sets loss.kind twice"),
    ([["a", "train.seed=1"]], r"sets train.seed itself: use --seeds"),
    ([["a", "loss.kind=hinge"], ["b", "loss.kind=hinge"]], r"--variant a and another variant set the same values"),
])
def test_malformed_variants_are_refused(given, message) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_variants(given)


def test_a_variant_the_config_refuses_is_named(capsys, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^--variant sn: model.d_norm='spectrall' is not one of"):
        SweepPlan(base="digits", axes=(parse_variants([["sn", "model.d_norm=spectrall"]]),)).validate()
    with pytest.raises(ConfigError, match=r"--vary loss.kind is given twice \(or also set by a --variant\)"):
        expand([parse_variants([["h", "loss.kind=hinge"]]), parse_vary("loss.kind=minimax")], (0,))
    assert main(["sweep", "digits", "--variant", "base", "--variant", "h", "loss.kind=hinge", "--kimg", "1",
                 "--sweeps-dir", str(tmp_path), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "variant-h__seed-0" in out and "loss.kind=hinge train.seed=0" in out
