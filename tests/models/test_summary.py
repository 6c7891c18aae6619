"""Parameter counts against hand computation; model_summary shapes, restoring modes; the table."""

from __future__ import annotations

import torch

from deconvgan.config import ModelConfig
from deconvgan.models import (
    build_discriminator,
    build_generator,
    count_params,
    example_inputs,
    format_summary,
    model_summary,
)


def test_dcgan_64_generator_parameter_count() -> None:
    cfg = ModelConfig(resolution=64, channels=3, latent_dim=100, g_width=64)
    widths, k = [512, 256, 128, 64], 4
    expected = 100 * widths[0] * 4 * 4 + 2 * widths[0]  # Linear (no bias: BN follows) + BN scale/shift
    for c_in, c_out in zip(widths[:-1], widths[1:], strict=True):
        expected += c_in * c_out * k * k + 2 * c_out  # ConvTranspose2d (no bias) + BN
    expected += widths[-1] * 3 * k * k + 3  # image layer with bias
    assert expected == 3_576_704 + 3  # pytorch/examples netG (no bias anywhere) + our last bias
    generator = build_generator(cfg)
    assert count_params(generator) == expected
    rows = model_summary(generator, example_inputs(cfg)[0])
    assert sum(r.num_params for r in rows) == expected


def test_summary_rows_of_small_generator() -> None:
    cfg = ModelConfig(resolution=16, channels=1, latent_dim=10, g_width=8, kernel_size=4)
    generator = build_generator(cfg)
    rows = model_summary(generator, torch.zeros(2, 10))
    table = {r.name: (r.kind, r.output_shape, r.num_params) for r in rows}
    assert table == {
        "net.project": ("Linear", (2, 16 * 16), 10 * 16 * 16),  # widths (16, 8) at sides (4, 8)
        "net.reshape": ("Unflatten", (2, 16, 4, 4), 0),
        "net.norm0": ("BatchNorm2d", (2, 16, 4, 4), 32),
        "net.act0": ("ReLU", (2, 16, 4, 4), 0),
        "net.up1.conv": ("ConvTranspose2d", (2, 8, 8, 8), 16 * 8 * 16),
        "net.norm1": ("BatchNorm2d", (2, 8, 8, 8), 16),
        "net.act1": ("ReLU", (2, 8, 8, 8), 0),
        "net.up2.conv": ("ConvTranspose2d", (2, 1, 16, 16), 8 * 1 * 16 + 1),
        "net.tanh": ("Tanh", (2, 1, 16, 16), 0),
    }
    assert [r.name for r in rows] == list(table)  # call order


def test_summary_of_spectral_discriminator_and_modes_restored() -> None:
    cfg = ModelConfig(resolution=16, channels=3, d_width=4, d_norm="spectral")
    discriminator = build_discriminator(cfg).train()
    before = {k: v.clone() for k, v in discriminator.state_dict().items()}
    rows = model_summary(discriminator, example_inputs(cfg, batch_size=1)[1])
    assert [r.name for r in rows] == [
        "net.conv1", "net.act1", "net.conv2", "net.act2", "net.flatten", "net.logit"
    ]
    assert rows[2].output_shape == (1, 8, 4, 4) and rows[-1].output_shape == (1, 1)
    assert rows[0].num_params == 3 * 4 * 16 + 4  # the spectral-norm original weight + bias
    assert sum(r.num_params for r in rows) == count_params(discriminator)
    assert all(m.training for m in discriminator.modules())
    after = discriminator.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # no power iteration, no BN update


def test_format_summary_is_aligned_with_total() -> None:
    cfg = ModelConfig(arch="mlp", resolution=8, mlp_hidden=4)
    generator = build_generator(cfg)
    rows = model_summary(generator, example_inputs(cfg)[0])
    text = format_summary(rows, count_params(generator), title="G")
    lines = text.splitlines()
    assert lines[0] == "G" and lines[1].split() == ["layer", "type", "output", "shape", "params"]
    assert lines[-1] == f"Total params: {count_params(generator):,}"
    body = lines[3:-2]
    assert len(body) == 5 and len({len(line) for line in body}) == 1  # right-aligned counts
    assert "1x1x8x8" in text and "net.out" in text
