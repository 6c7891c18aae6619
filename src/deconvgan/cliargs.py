"""Numeric command-line values, checked once at the parsing layer: one ``error:`` line, exit status 2.

Every number a flag takes goes through one of these argparse types, so NaN, infinities, negative,
zero and absurdly large values are refused before any command runs (``--kimg nan``,
``--batch-size 0``, ``--scale 1e9``). :class:`OneLineParser` prints argparse's own complaints
(a missing argument, a bad choice, a bad number) as a single ``error: ...`` line too.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable
from typing import NoReturn

MAX_COUNT = 2**31 - 1  # counts (batch sizes, images, threads, frames): beyond this nothing fits in memory anyway
MAX_SEED = 2**63 - 1  # torch seeds are 64-bit
MAX_KIMG = 1e9  # a trillion images: longer is a typo


class OneLineParser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one ``error: ...`` line (with where to get help), exit status 2."""

    def error(self, message: str) -> NoReturn:
        print(f"error: {self.prog}: {message} (see {self.prog} --help)", file=sys.stderr)
        raise SystemExit(2)


def _number(kind: type, text: str) -> float | int:
    try:
        value = kind(text)
    except (ValueError, OverflowError):
        raise argparse.ArgumentTypeError(f"{text!r} is not {'an integer' if kind is int else 'a number'}") from None
    if isinstance(value, float) and not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
    return value


def _show(bound: float) -> str:
    return str(bound) if isinstance(bound, int) else f"{bound:g}"


def bounded(kind: type, low: float, high: float, *, low_inclusive: bool = True) -> Callable[[str], float | int]:
    """An argparse type: a finite ``kind`` (int or float) in [low, high] (or (low, high])."""

    def parse(text: str) -> float | int:
        value = _number(kind, text)
        if value < low or (value == low and not low_inclusive) or value > high:
            left = "[" if low_inclusive else "("
            raise argparse.ArgumentTypeError(f"{text} is outside {left}{_show(low)}, {_show(high)}]")
        return value

    parse.__name__ = kind.__name__  # argparse names the type in its messages
    return parse


positive_int = bounded(int, 1, MAX_COUNT)
seed_int = bounded(int, 0, MAX_SEED)
positive_float = bounded(float, 0, 1e300, low_inclusive=False)
kimg_float = bounded(float, 0, MAX_KIMG, low_inclusive=False)
