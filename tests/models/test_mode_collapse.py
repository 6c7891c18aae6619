"""Mode-collapse remedies in the discriminator: PacGAN packing and the minibatch-stddev layer."""

from __future__ import annotations

import pytest
import torch

from deconvgan.config import ModelConfig
from deconvgan.configio import load_config
from deconvgan.errors import ConfigError
from deconvgan.models import build_discriminator
from deconvgan.models.mbstd import MinibatchStdDev

SMALL = dict(resolution=16, latent_dim=8, g_width=8, d_width=8, max_width=16)


def make_cfg(arch: str = "dcgan", **kwargs: object) -> ModelConfig:
    if arch == "seed":
        return ModelConfig(arch="seed", resolution=64, latent_dim=8, **kwargs)
    return ModelConfig(arch=arch, **{**SMALL, **kwargs})


def images(n: int, cfg: ModelConfig, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, *cfg.image_shape, generator=torch.Generator().manual_seed(seed)) * 2 - 1


# --- off by default: the discriminator is exactly what it was -------------------------------------

# The state-dict layout of SMALL's discriminator before the remedies existed.
BEFORE = [
    ("net.conv1.weight", (8, 1, 4, 4)), ("net.conv1.bias", (8,)), ("net.conv2.weight", (16, 8, 4, 4)),
    ("net.norm2.weight", (16,)), ("net.norm2.bias", (16,)), ("net.norm2.running_mean", (16,)),
    ("net.norm2.running_var", (16,)), ("net.norm2.num_batches_tracked", ()),
    ("net.logit.weight", (1, 256)), ("net.logit.bias", (1,)),
]


def state(cfg: ModelConfig, seed: int = 0) -> dict[str, torch.Tensor]:
    torch.manual_seed(seed)
    return build_discriminator(cfg).state_dict()


def test_defaults_leave_the_discriminator_unchanged() -> None:
    default = state(make_cfg())
    assert [(k, tuple(v.shape)) for k, v in default.items()] == BEFORE
    explicit = state(make_cfg(d_pack=1, d_mbstd=0))
    assert all(torch.equal(default[k], explicit[k]) for k in default)


def test_each_remedy_changes_only_its_layer() -> None:
    default = state(make_cfg())
    packed = state(make_cfg(d_pack=2))
    assert list(packed) == list(default) and packed["net.conv1.weight"].shape == (8, 2, 4, 4)
    mbstd = state(make_cfg(d_mbstd=4))  # a parameter-free layer: same keys, one more input to the logit
    assert list(mbstd) == list(default) and mbstd["net.logit.weight"].shape == (1, (16 + 1) * 4 * 4)
    # With a remedy on, the init is still a function of the seed alone.
    again = state(make_cfg(d_mbstd=4))
    assert all(torch.equal(mbstd[k], again[k]) for k in mbstd)


# --- packing -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("arch", ["dcgan", "seed", "mlp"])
@pytest.mark.parametrize("pack", [2, 4])
def test_packing_gives_one_logit_per_pack(arch: str, pack: int) -> None:
    cfg = make_cfg(arch, d_pack=pack, channels=3)
    torch.manual_seed(0)
    discriminator = build_discriminator(cfg)
    logits = discriminator(images(8, cfg))
    assert logits.shape == (8 // pack,)
    logits.sum().backward()  # trains like the unpacked one
    if arch != "mlp":
        assert discriminator.net.conv1.in_channels == 3 * pack


@pytest.mark.parametrize("arch", ["dcgan", "mlp"])
def test_a_pack_logit_depends_on_its_own_samples_only(arch: str) -> None:
    cfg = make_cfg(arch, d_pack=2, d_norm="batch")
    torch.manual_seed(0)
    discriminator = build_discriminator(cfg).eval()  # eval: BatchNorm does not mix the batch
    x = images(8, cfg)
    with torch.no_grad():
        before = discriminator(x)
        for sample in (2, 3):  # the two members of pack 1
            changed = x.clone()
            changed[sample] = -changed[sample]
            after = discriminator(changed)
            assert after[1] != before[1]  # both members matter...
            others = [0, 2, 3]
            assert torch.equal(after[others], before[others])  # ...to their own pack only


def test_packing_refuses_a_batch_not_divisible_by_the_pack() -> None:
    cfg = make_cfg(d_pack=3)
    with pytest.raises(ValueError, match="d_pack=3"):
        build_discriminator(cfg)(images(8, cfg))


# --- minibatch standard deviation --------------------------------------------------------------------


def test_mbstd_appends_the_group_stddev_map() -> None:
    layer = MinibatchStdDev(4)
    x = torch.randn(8, 3, 5, 5, generator=torch.Generator().manual_seed(0))
    y = layer(x)
    assert y.shape == (8, 4, 5, 5) and torch.equal(y[:, :3], x)
    # Strided groups (as in Karras et al.'s code): with 8 samples in groups of 4, samples 0, 2, 4, 6
    # form one group and 1, 3, 5, 7 the other.
    for member in range(2):
        group = x[member::2]  # [4, 3, 5, 5]
        expected = torch.sqrt(group.var(dim=0, correction=0) + 1e-8).mean()
        assert torch.allclose(y[member::2, 3], expected.expand(4, 5, 5))


def test_mbstd_depends_on_the_other_samples_of_the_group() -> None:
    layer = MinibatchStdDev(4)
    x = torch.randn(8, 3, 5, 5, generator=torch.Generator().manual_seed(0))
    same_group, other_group = x.clone(), x.clone()
    same_group[2] += 1.0  # in sample 0's group
    other_group[1] += 1.0  # not in sample 0's group
    assert not torch.equal(layer(same_group)[0, 3], layer(x)[0, 3])
    assert torch.equal(layer(other_group)[0, 3], layer(x)[0, 3])


def test_mbstd_group_size_is_capped_by_the_batch_and_must_divide_it() -> None:
    layer = MinibatchStdDev(4)
    assert layer(torch.randn(2, 3, 4, 4)).shape == (2, 4, 4, 4)  # group of min(4, 2) = 2
    assert torch.allclose(layer(torch.randn(1, 3, 4, 4))[:, 3], torch.tensor(1e-4))  # one sample: sqrt(eps)
    with pytest.raises(ValueError, match="groups of 4"):
        layer(torch.randn(6, 3, 4, 4))
    with pytest.raises(ValueError, match="group_size=0 must be >= 1"):
        MinibatchStdDev(0)


@pytest.mark.parametrize("arch", ["dcgan", "seed"])
def test_discriminator_with_mbstd_sees_the_batch(arch: str) -> None:
    torch.manual_seed(0)
    cfg = make_cfg(arch, d_mbstd=4, d_norm="spectral")
    discriminator = build_discriminator(cfg).eval()
    assert isinstance(discriminator.net.mbstd, MinibatchStdDev)
    x = images(8, cfg)
    changed = x.clone()
    changed[4] = -changed[4]  # same group as sample 0 (strided groups of 4 in a batch of 8)
    with torch.no_grad():
        assert discriminator(x).shape == (8,)
        assert discriminator(changed)[0] != discriminator(x)[0]
        # Control: without the layer, sample 0's logit ignores sample 4.
        torch.manual_seed(0)
        plain = build_discriminator(make_cfg(arch, d_norm="spectral")).eval()
        assert torch.equal(plain(changed)[0], plain(x)[0])


def test_packing_and_mbstd_together() -> None:
    # 8 samples -> 4 packs (samples 2i, 2i+1) -> stddev groups of 2 packs, strided: {0, 2} and {1, 3}.
    cfg = make_cfg(d_pack=2, d_mbstd=2)
    torch.manual_seed(0)
    discriminator = build_discriminator(cfg).eval()  # eval: BatchNorm does not mix the batch
    seen = []
    discriminator.net.mbstd.register_forward_hook(lambda module, args, out: seen.append((args[0], out)))
    x = images(8, cfg)
    with torch.no_grad():
        before = discriminator(x)
        assert before.shape == (4,)
        features, out = seen[-1]
        assert features.shape[0] == 4  # the layer sees packs, not samples
        for group in ([0, 2], [1, 3]):
            expected = torch.sqrt(features[group].var(dim=0, correction=0) + 1e-8).mean()
            assert torch.allclose(out[group, -1], expected.expand(2, *out.shape[2:]))
        changed = x.clone()
        changed[5] = -changed[5]  # the second member of pack 2 (samples 4, 5), in pack 0's group
        after = discriminator(changed)
    assert after[0] != before[0] and after[2] != before[2]  # pack 0 through the group statistic
    assert torch.equal(after[[1, 3]], before[[1, 3]])  # the other group does not see it


# --- configuration -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"d_pack": 0}, "d_pack=0"),
        ({"d_mbstd": -1}, "d_mbstd=-1"),
        ({"d_mbstd": 1}, "d_mbstd=1"),
        ({"arch": "mlp", "d_mbstd": 4}, "convolutional"),
    ],
)
def test_config_refuses_bad_values(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        make_cfg(**kwargs)


def test_config_needs_a_batch_divisible_by_the_pack() -> None:
    with pytest.raises(ConfigError, match="batch_size=10 is not divisible by model.d_pack=4"):
        load_config(None, ["model.d_pack=4", "train.batch_size=10"])
    assert load_config(None, ["model.d_pack=4", "train.batch_size=12"]).model.d_pack == 4
