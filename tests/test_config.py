"""Config: defaults, YAML + overrides, type checks and one-line errors."""

import re

import pytest

from deconvgan.config import Config, ModelConfig, PhaseConfig, TrainConfig, base_resolution
from deconvgan.configio import apply_overrides, config_to_yaml, from_dict, load_config, preset_names
from deconvgan.errors import ConfigError


@pytest.mark.parametrize(("resolution", "base"), [(16, 4), (28, 7), (32, 4), (64, 4), (128, 4), (48, 6), (20, 5)])
def test_base_resolution(resolution, base):
    assert base_resolution(resolution) == base


@pytest.mark.parametrize("resolution", [7, 4, 9, 17, 24 * 3 + 1])
def test_resolutions_that_cannot_be_built_are_refused(resolution):
    with pytest.raises(ConfigError, match=f"model.resolution={resolution}"):
        ModelConfig(resolution=resolution)


def test_load_config_takes_a_preset_name():
    assert {"digits", "mnist-28", "stacked-mnist"} <= set(preset_names())
    cfg = load_config("stacked-mnist", ["train.batch_size=32"])
    assert (cfg.data.source, cfg.model.channels, cfg.train.batch_size) == ("stacked-mnist", 3, 32)
    with pytest.raises(ConfigError, match="'nope' is neither a preset .*digits.* nor a YAML file"):
        load_config("nope")


def test_yaml_then_overrides_then_round_trip(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("name: t\nmodel: {resolution: 28}\ntrain: {batch_size: 32, phases: [{kimg: 2}]}\n")
    cfg = load_config(path, ["train.batch_size=128", "loss.kind=hinge", "train.betas=[0.0, 0.99]"])
    assert cfg.model.resolution == 28 and cfg.train.batch_size == 128 and cfg.loss.kind == "hinge"
    assert cfg.train.betas == (0.0, 0.99)
    assert cfg.train.phases == (PhaseConfig(name="adversarial", kimg=2.0),)
    # The resolved YAML reads back to the same config.
    again = tmp_path / "again.yaml"
    again.write_text(config_to_yaml(cfg))
    assert load_config(again) == cfg


def test_exponent_notation_without_a_dot_is_a_number():
    # YAML 1.1 reads "1e-4" as a string; --set train.g_lr=1e-4 must still mean 0.0001
    cfg = load_config(None, ["train.g_lr=1e-4", "run.sample_every_kimg=1e9"])
    assert cfg.train.g_lr == 1e-4 and cfg.run.sample_every_kimg == 1e9
    with pytest.raises(ConfigError, match="train.g_lr='fast' must be a number"):
        load_config(None, ["train.g_lr=fast"])


def test_phase_lengths_in_kimg_or_steps():
    train = TrainConfig(batch_size=64, phases=(PhaseConfig(kimg=1.0), PhaseConfig(name="g", steps=5, train_d=False)))
    assert train.total_steps == 16 + 5  # ceil(1000 / 64) = 16
    with pytest.raises(ConfigError, match="exactly one of kimg or steps"):
        PhaseConfig(kimg=1.0, steps=3)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["model.resolutoin=32"], "unknown config key model.resolutoin"),
        (["model.upsample=deconv"], "model.upsample='deconv' is not one of transposed, resize, pixelshuffle"),
        (["train.batch_size=0"], "train.batch_size=0 must be > 0"),
        (["train.batch_size=big"], "train.batch_size='big' must be an integer"),
        (["train.g_lr=true"], "train.g_lr=True must be a number"),
        (["model.channels=2"], "model.channels=2 must be 1"),
        (["loss.kind=wasserstein"], "needs a discriminator without batch norm"),
        (["data.source=folder"], "data.source=folder needs data.path"),
        (["train.phases=[{kimg: 1, train_d: false}]"], "the first phase must train the discriminator"),
        (["batch_size"], "must look like section.key=value"),
    ],
)
def test_bad_values_give_one_line_errors(overrides, message):
    with pytest.raises(ConfigError, match=re.escape(message)) as info:
        load_config(None, overrides)
    assert "\n" not in str(info.value)


def test_bad_yaml_names_the_file(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("model: {resolution: 28\n")
    with pytest.raises(ConfigError, match="broken.yaml.*not valid YAML"):
        load_config(path)
    with pytest.raises(ConfigError, match="missing.yaml: config file not found"):
        load_config(tmp_path / "missing.yaml")


def test_configs_are_frozen_and_overrides_do_not_mutate_their_input():
    cfg = Config()
    with pytest.raises(AttributeError, match="cannot assign to field 'name'"):
        cfg.name = "x"  # type: ignore[misc]
    data = {"train": {"batch_size": 8}}
    apply_overrides(data, ["train.batch_size=16"])
    assert data == {"train": {"batch_size": 8}}
    assert from_dict(Config, Config().to_dict()) == Config()
