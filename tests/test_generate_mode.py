"""``generate()`` does not change the caller's module: its train/eval flags are the same afterwards."""

from __future__ import annotations

import pytest
import torch

from deconvgan.config import ModelConfig
from deconvgan.models import build_generator
from deconvgan.sampling import generate, latents_for_seeds

CFG = ModelConfig(resolution=16, latent_dim=8, g_width=8, max_width=16)


def _modes(module: torch.nn.Module) -> dict[str, bool]:
    return {name: m.training for name, m in module.named_modules()}


@pytest.mark.parametrize("fuse", [True, False])
def test_a_training_generator_stays_in_training_mode(fuse: bool) -> None:
    torch.manual_seed(0)
    G = build_generator(CFG).train()
    before = _modes(G)
    assert all(before.values())
    images = generate(G, latents_for_seeds([0, 1, 2], CFG.latent_dim), fuse=fuse)
    assert _modes(G) == before
    # and the images are the eval-mode ones (running statistics, not this batch's)
    expected = generate(G.eval(), latents_for_seeds([0, 1, 2], CFG.latent_dim), fuse=fuse)
    assert torch.equal(images, expected)


def test_mixed_modes_are_kept_per_module() -> None:
    torch.manual_seed(0)
    G = build_generator(CFG).train()
    frozen = [m for m in G.modules() if isinstance(m, torch.nn.BatchNorm2d)][0].eval()  # e.g. a frozen BN
    before = _modes(G)
    generate(G, latents_for_seeds([0], CFG.latent_dim))
    assert _modes(G) == before and not frozen.training


def test_modes_are_restored_when_generation_fails() -> None:
    G = build_generator(CFG).train()
    before = _modes(G)
    with pytest.raises(RuntimeError, match="shapes cannot be multiplied"):
        generate(G, torch.zeros(2, CFG.latent_dim + 1), fuse=False)  # wrong latent size
    assert _modes(G) == before
