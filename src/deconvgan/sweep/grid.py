"""The grid of a sweep: ``--vary key=v1,v2,...`` axes, their combinations times seeds, and row names.

A row is one training run: one value per axis and one seed. Row names are the varied keys' last
parts with their values, then the seed, joined by double underscores:
``--vary model.kernel_size=3,5 --vary model.g_depth=0,1 --seeds 0`` gives
``kernel_size-3__g_depth-0__seed-0``, ... (the full dotted key when two axes share a last part;
characters other than letters, digits and ``. _ + -`` in a value become ``_``). Names are readable,
safe as folder names on every OS, and sort the rows by combination.

Linked keys take each value together: ``--vary model.g_depth+model.d_depth=0,1,2`` is one axis of
three values, setting both keys (rows ``g_depth+d_depth-1__seed-0``, ...), where two axes would
also run the mixed depths.

Named variants are one axis of hand-picked recipes rather than a product of values:
``--variant base --variant hinge-sn loss.kind=hinge model.d_norm=spectral`` gives rows
``variant-base__seed-0`` and ``variant-hinge-sn__seed-0`` (a variant with no overrides is the base
itself); with ``--vary`` axes too, every variant meets every combination.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass

from deconvgan.errors import ConfigError

SEED_KEY = "seed"  # the name part of the seed in a row name
VARIANT_KEY = "variant"  # the key of the named-variants axis in row names, tables and sweep.json
# Keys a sweep sets itself (per row or for the whole sweep): varying them would make rows collide or lie.
RESERVED_KEYS = {"train.seed": "use --seeds", "name": "use --name", "run.runs_dir": "use --sweeps-dir",
                 "run.num_threads": "the sweep divides the cores between --jobs"}
_UNSAFE = re.compile(r"[^A-Za-z0-9._+-]")


@dataclass(frozen=True)
class Axis:
    """One ``--vary``: a dotted config key (or linked keys joined by ``+``) and its values as written
    (parsed as YAML when applied)."""

    key: str
    values: tuple[str, ...]
    # The named-variants axis (key "variant"): each value's own overrides, in the order of ``values``.
    variants: tuple[tuple[str, ...], ...] = ()

    @property
    def keys(self) -> tuple[str, ...]:
        """The config keys each value sets: one, or the linked ones (variants: every key any of them sets)."""
        if self.key == VARIANT_KEY:
            return tuple(dict.fromkeys(o.partition("=")[0] for overrides in self.variants for o in overrides))
        return tuple(self.key.split("+"))

    def overrides(self, value: str) -> list[str]:
        """``--set`` style overrides of one value: ``["model.kernel_size=3"]`` (linked keys: one per key)."""
        if self.key == VARIANT_KEY:
            return list(self.variants[self.values.index(value)])
        return [f"{key}={value}" for key in self.keys]

    @property
    def flag(self) -> str:
        """How the user wrote it: ``model.kernel_size=3,4,5``; variants: ``base; hinge-sn: loss.kind=hinge ...``."""
        if self.key == VARIANT_KEY:
            return "; ".join(f"{name}: {' '.join(o)}" if o else name for name, o in zip(self.values, self.variants,
                                                                                          strict=True))
        return f"{self.key}={','.join(self.values)}"


def split_values(text: str) -> list[str]:
    """Split on commas outside brackets, so a list value stays whole: ``"[1, 2],[3]"`` -> two values."""
    values, depth, start = [], 0, 0
    for i, char in enumerate(text):
        depth += char in "[{"
        depth -= char in "]}"
        if char == "," and depth == 0:
            values.append(text[start:i].strip())
            start = i + 1
    values.append(text[start:].strip())
    return values


def parse_vary(text: str) -> Axis:
    """``"model.kernel_size=3,4,5"`` -> :class:`Axis`; a one-line ConfigError for a malformed flag."""
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key or not raw.strip():
        raise ConfigError(f"--vary {text!r} must look like section.key=value1,value2 (e.g. model.kernel_size=3,4,5)")
    if key == VARIANT_KEY:
        raise ConfigError(f"--vary {text!r}: named recipes are given as --variant NAME KEY=VALUE ...")
    parts = key.split("+")
    for part in parts:
        _check_key(part, f"--vary {text!r}")
    if len(set(parts)) != len(parts):
        raise ConfigError(f"--vary {text!r} links a key to itself")
    values = split_values(raw)
    if any(not v for v in values):
        raise ConfigError(f"--vary {text!r} has an empty value (two commas in a row, or one at an end)")
    repeated = sorted({v for v in values if values.count(v) > 1})
    if repeated:
        raise ConfigError(f"--vary {text!r} lists {repeated[0]} twice")
    return Axis(key, tuple(values))


def _check_key(key: str, where: str) -> None:
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*", key):
        raise ConfigError(f"{where}: {key!r} is not a dotted config key like model.kernel_size")
    if key in RESERVED_KEYS:
        raise ConfigError(f"{where}: the sweep sets {key} itself: {RESERVED_KEYS[key]}")


def parse_variants(given: list[list[str]]) -> Axis:
    """``--variant NAME [KEY=VALUE ...]`` flags (each a list of words) -> the named-variants axis."""
    names, variants = [], []
    for words in given:
        name, *overrides = words
        where = f"--variant {' '.join(words)}"
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._+-]*", name) or "=" in name:
            raise ConfigError(f"{where}: the name {name!r} comes first and must be letters, digits and . _ + - "
                              "(e.g. --variant hinge-sn loss.kind=hinge model.d_norm=spectral)")
        if name in names:
            raise ConfigError(f"{where}: the variant {name} is given twice")
        keys, values = [], []
        for override in overrides:
            key, sep, value = (part.strip() for part in override.partition("="))
            if not sep or not value:
                raise ConfigError(f"{where}: {override!r} must look like section.key=value")
            _check_key(key, where)
            if key in keys:
                raise ConfigError(f"{where} sets {key} twice")
            keys.append(key)
            values.append(f"{key}={value}")
        names.append(name)
        variants.append(tuple(values))
    repeated = [name for name, o in zip(names, variants, strict=True) if variants.count(o) > 1]
    if repeated:
        raise ConfigError(f"--variant {repeated[0]} and another variant set the same values: give each recipe once")
    return Axis(VARIANT_KEY, tuple(names), tuple(variants))


def check_axes(axes: list[Axis]) -> None:
    """At least one axis, and no key varied twice (ConfigError)."""
    if not axes:
        raise ConfigError("a sweep needs at least one --vary key=value1,value2 or --variant NAME KEY=VALUE ...")
    keys = [k for a in axes for k in a.keys]
    for key in keys:
        if keys.count(key) > 1:
            raise ConfigError(f"--vary {key} is given twice (or also set by a --variant): list all its values in "
                              "one --vary")


def parse_seed_list(text: str) -> tuple[int, ...]:
    """``"0,1,2"`` or ``"0-2"`` -> (0, 1, 2); each seed once (ConfigError on a repeat)."""
    from deconvgan.sampling import parse_seeds  # the one seed-list syntax of the CLI

    seeds = parse_seeds(text)
    if len(set(seeds)) != len(seeds):
        raise ConfigError(f"--seeds {text!r} names a seed twice: each seed is one run per combination")
    return tuple(seeds)


@dataclass(frozen=True)
class Row:
    """One training run of a sweep: a value per axis (``settings``, in axis order) and a seed."""

    name: str
    settings: tuple[tuple[str, str], ...]  # (axis key, value as written)
    seed: int
    overrides: tuple[str, ...] = ()  # what the values set, ``--set`` style: ("model.kernel_size=3", ...)

    @property
    def combination(self) -> str:
        """The row's name without the seed: what the seeds of one combination share."""
        return self.name.rsplit("__", 1)[0]


def short_keys(axes: list[Axis]) -> dict[str, str]:
    """Each axis key -> its label in row names: the last dotted part (of each linked key), unless two
    axes share it."""
    leaves = [VARIANT_KEY if a.key == VARIANT_KEY else "+".join(k.rsplit(".", 1)[-1] for k in a.keys) for a in axes]
    return {a.key: leaf if leaves.count(leaf) == 1 and leaf != SEED_KEY else a.key
            for a, leaf in zip(axes, leaves, strict=True)}


def row_name(labels: dict[str, str], settings: tuple[tuple[str, str], ...], seed: int) -> str:
    """``kernel_size-3__g_depth-0__seed-0`` (see the module doc)."""
    parts = [f"{labels[key]}-{_UNSAFE.sub('_', value)}" for key, value in settings]
    return "__".join([*parts, f"{SEED_KEY}-{seed}"])


def expand(axes: list[Axis], seeds: tuple[int, ...]) -> list[Row]:
    """Every combination x seed, seed-major: all combinations of seed 0 first, so a sweep stopped
    early has compared every combination on at least one seed. Combinations vary the last axis fastest."""
    check_axes(axes)
    labels = short_keys(axes)
    combinations = list(itertools.product(*[[(a, v) for v in a.values] for a in axes]))
    rows = [Row(row_name(labels, settings, seed), settings, seed,
                tuple(o for a, v in combination for o in a.overrides(v)))
            for seed in seeds for combination in combinations
            for settings in [tuple((a.key, v) for a, v in combination)]]
    names = [r.name for r in rows]
    for name in names:
        if names.count(name) > 1:  # two values that differ only in characters made safe
            raise ConfigError(f"two rows would share the folder name {name!r}: write the --vary values "
                              "so they differ in letters or digits")
    return rows
