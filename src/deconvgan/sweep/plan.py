"""A sweep's plan: the base config, the axes, seeds, budget and evaluation; saved as ``sweep.json``.

Every row trains with ``deconvgan train`` and exactly the arguments :meth:`SweepPlan.train_args`
gives, and :meth:`SweepPlan.validate` resolves those same arguments with the CLI's own parser and
config resolution before anything runs: a key the schema does not know, a value it refuses, or a
combination it refuses fails the whole sweep at once with one line naming it.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from deconvgan.atomic import write_text
from deconvgan.config import Config
from deconvgan.configio import read_config_source
from deconvgan.errors import ConfigError
from deconvgan.sweep.grid import VARIANT_KEY, Axis, Row, expand

PLAN_FILE = "sweep.json"
BASE_FILE = "base.yaml"  # the base config copied into the sweep: a later edit of the preset or file changes nothing
PLAN_FORMAT = "deconvgan-sweep-plan"
PLAN_VERSION = 1


@dataclass(frozen=True)
class SweepPlan:
    """Everything a sweep needs to run (and to continue after a stop) besides the machine's cores."""

    base: str  # a preset name or a YAML file; inside a saved sweep, its base.yaml
    axes: tuple[Axis, ...]
    seeds: tuple[int, ...] = (0,)
    kimg: float | None = None  # the adversarial phase's length (None: as the base config says)
    metrics: tuple[str, ...] = ("fd-classifier",)
    eval_images: int = 10_000  # generated and real images per evaluation
    sets: tuple[str, ...] = ()  # --set overrides for every row (the axes' values come after them)
    data: str | None = None  # --data of every row
    data_root: str | None = None  # --data-root of every row and of the evaluations
    command: str = ""  # the command line that started the sweep, for the report

    def rows(self) -> list[Row]:
        """Every combination x seed, seed-major (see :func:`deconvgan.sweep.grid.expand`)."""
        return expand(list(self.axes), self.seeds)

    def train_args(self, row: Row, runs_dir: str | Path, threads: int | None = None) -> list[str]:
        """``deconvgan train`` arguments of a new run of ``row`` under ``runs_dir``."""
        return self._train_args(row.seed, row.overrides, runs_dir, threads)

    def _train_args(self, seed: int, overrides: list[str], runs_dir: str | Path, threads: int | None) -> list[str]:
        args = [self.base, "--runs-dir", str(runs_dir), "--seed", str(seed), "--no-progress"]
        if self.kimg is not None:
            args += ["--kimg", f"{self.kimg:g}"]
        if self.data is not None:
            args += ["--data", self.data]
        if self.data_root is not None:
            args += ["--data-root", self.data_root]
        if threads is not None:
            args += ["--threads", str(threads)]
        for override in (*self.sets, *overrides):  # the row's values last: they win over --set
            args += ["--set", override]
        return args

    def config_of(self, seed: int, overrides: list[str]) -> Config:
        """The config ``deconvgan train`` resolves for a row of ``seed`` with these axis values."""
        from deconvgan.cli import build_parser, resolve_train_config  # the train command's own resolution

        args = self._train_args(seed, overrides, "sweeps", None)
        return resolve_train_config(build_parser().parse_args(["train", *args]))

    def validate(self) -> list[Row]:
        """The rows, after building every row's config (ConfigError naming the culprit otherwise)."""
        rows = self.rows()
        first = rows[0]
        self.config_of(first.seed, [])  # the base itself (with --set, --kimg, --data): its own error message
        for axis in self.axes:
            for value in axis.values:
                try:
                    self.config_of(first.seed, axis.overrides(value))
                except ConfigError as exc:
                    flag = f"--variant {value}" if axis.key == VARIANT_KEY else f"--vary {axis.key}={value}"
                    raise ConfigError(f"{flag}: {exc}") from None
        seen: dict[str, str] = {}
        for row in rows:
            try:
                cfg = self.config_of(row.seed, row.overrides)
            except ConfigError as exc:
                raise ConfigError(f"--vary combination {' '.join(row.overrides)}: {exc}") from None
            if row.seed == first.seed:  # two combinations training the same config would waste a row
                resolved = json.dumps(cfg.to_dict(), sort_keys=True)
                if resolved in seen:
                    raise ConfigError(f"--vary: {seen[resolved]} and {' '.join(row.overrides)} give the same config "
                                      "(a value the config treats as another): list each value once")
                seen[resolved] = " ".join(row.overrides)
        return rows

    # --- saving and loading -------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """Plain data for ``sweep.json``."""
        data = dataclasses.asdict(self)
        data["axes"] = [{"key": a.key, "values": list(a.values), **({"variants": [list(o) for o in a.variants]}
                                                                     if a.key == VARIANT_KEY else {})}
                        for a in self.axes]
        return {"format": PLAN_FORMAT, "version": PLAN_VERSION, **data}

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str = PLAN_FILE) -> SweepPlan:
        """The plan saved by :meth:`to_dict` (ConfigError for anything else)."""
        if not isinstance(data, dict) or data.get("format") != PLAN_FORMAT:
            raise ConfigError(f"{where} is not a deconvgan sweep plan")
        if data.get("version") != PLAN_VERSION:
            raise ConfigError(f"{where}: sweep plan version {data.get('version')} is not {PLAN_VERSION}; "
                              "this deconvgan cannot continue it")
        fields = {f.name for f in dataclasses.fields(cls)}
        try:
            kwargs = {k: v for k, v in data.items() if k in fields}
            kwargs["axes"] = tuple(Axis(a["key"], tuple(a["values"]), tuple(tuple(o) for o in a.get("variants", ())))
                                   for a in data["axes"])
            for key in ("seeds", "metrics", "sets"):
                kwargs[key] = tuple(kwargs[key])
            return cls(**kwargs)
        except (KeyError, TypeError) as exc:
            raise ConfigError(f"{where}: a damaged sweep plan ({exc})") from None


def save_plan(plan: SweepPlan, sweep_dir: Path) -> SweepPlan:
    """Write ``base.yaml`` and ``sweep.json`` into ``sweep_dir``; the plan now trains from ``base.yaml``."""
    write_text(sweep_dir / BASE_FILE, yaml.safe_dump(read_config_source(plan.base), sort_keys=False))
    saved = dataclasses.replace(plan, base=BASE_FILE)  # relative: the sweep folder can move
    write_text(sweep_dir / PLAN_FILE, json.dumps(saved.to_dict(), indent=2) + "\n")
    return dataclasses.replace(plan, base=str((sweep_dir / BASE_FILE).resolve()))


def load_plan(sweep_dir: Path) -> SweepPlan:
    """The plan of an existing sweep directory (its base resolved to the directory's ``base.yaml``)."""
    path = sweep_dir / PLAN_FILE
    if not path.is_file():
        raise ConfigError(f"--resume {sweep_dir}: no {PLAN_FILE} there (not a sweep directory)")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: unreadable ({exc})") from None
    plan = SweepPlan.from_dict(data, str(path))
    return dataclasses.replace(plan, base=str((sweep_dir / plan.base).resolve()))
