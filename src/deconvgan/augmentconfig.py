"""The ``augment`` section of the configuration: what is done to every image the discriminator sees.

Part of the schema (:mod:`deconvgan.config` re-exports it); the augmentation itself is
:mod:`deconvgan.training.augment`.
"""

from __future__ import annotations

from dataclasses import dataclass

from deconvgan.errors import ConfigError
from deconvgan.modelconfig import check_choice, check_in_range, check_positive

AUGMENTS = ("none", "diffaugment", "ada")  # augmentation of D's inputs: deconvgan.training.augment
AUGMENT_OPS = ("color", "translation", "cutout")  # DiffAugment's policy (Zhao et al. 2020)


@dataclass(frozen=True)
class AugmentConfig:
    """Differentiable augmentation of all D sees: DiffAugment (every op, every image) or ADA (each op with an
    adaptive probability p steering r_t = E[sign D(x_real)] to ``ada_target``); deconvgan.training.augment."""

    kind: str = "none"  # none | diffaugment | ada
    policy: tuple[str, ...] = AUGMENT_OPS  # ops, applied in this order: color, translation, cutout
    translation: float = 0.125  # largest shift, as a fraction of the side (zero-padded)
    cutout: float = 0.5  # side of the cut-out square, as a fraction of the image side
    ada_target: float = 0.6  # r_t that p is steered towards
    ada_interval: int = 4  # generator steps between adjustments of p
    ada_kimg: float = 500.0  # thousands of images over which p can move by at most 1 (adjustment speed)
    ada_p_init: float = 0.0  # p at the start of a run

    def __post_init__(self) -> None:
        check_choice("augment.kind", self.kind, AUGMENTS)
        for op in self.policy:
            check_choice("augment.policy entry", op, AUGMENT_OPS)
        if len(set(self.policy)) != len(self.policy) or (self.kind != "none" and not self.policy):
            raise ConfigError(f"augment.policy={list(self.policy)} must name each op once, and one at least")
        for key, low, high in (("translation", 0, 0.5), ("cutout", 0, 1), ("ada_target", -1, 1), ("ada_p_init", 0, 1)):
            check_in_range(f"augment.{key}", getattr(self, key), low, high)
        check_positive("augment.ada_interval", self.ada_interval)
        check_positive("augment.ada_kimg", self.ada_kimg)
