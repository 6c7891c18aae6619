"""Deterministic randomness without hidden state: every draw comes from a seed derived from
(run seed, purpose, rank, counter).

Step ``s`` of rank ``r`` draws its latents, flips and penalty mixes from its own
``torch.Generator``, seeded by ``derive_seed(seed, "step", r, s)``. Nothing carries over from one
step to the next, so resuming at any step replays exactly what an uninterrupted run would have
drawn, and one rank's draws never depend on another's.
"""

from __future__ import annotations

import hashlib

import torch

_MASK64 = (1 << 63) - 1  # torch seeds must fit a signed 64-bit integer


def derive_seed(seed: int, purpose: str, *counters: int) -> int:
    """A 63-bit seed that depends on every argument (BLAKE2b, so nearby inputs are unrelated)."""
    text = ":".join([str(seed), purpose, *map(str, counters)])
    digest = hashlib.blake2b(text.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") & _MASK64


def make_generator(seed: int, device: torch.device | str = "cpu") -> torch.Generator:
    """A fresh ``torch.Generator`` on ``device`` seeded with ``seed``."""
    gen = torch.Generator(device=device)
    gen.manual_seed(seed)
    return gen
