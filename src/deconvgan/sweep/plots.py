"""The report's plots as PNG bytes, drawn with matplotlib's object API (no pyplot, no global backend change).

matplotlib is optional (``pip install 'deconvgan[sweep]'``) and imported only here, when a plot is drawn.
Each combination keeps one colour in every plot; its seeds share it.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field

MATPLOTLIB_MISSING = "the sweep report needs matplotlib: pip install 'deconvgan[sweep]'"
DPI = 100


@dataclass
class Panel:
    """One subplot of curves: ``series[combination]`` is a list of ``(xs, ys)``, one per seed."""

    title: str
    xlabel: str
    ylabel: str
    series: dict[str, list[tuple[list[float], list[float]]]] = field(default_factory=dict)


@dataclass(frozen=True)
class CostPoint:
    """A combination's final metric (mean and std over its seeds) and what it cost."""

    combination: str
    gflop_per_image: float
    train_minutes: float
    mean: float
    std: float


def _figure(columns: int, width_per_panel: float = 5.0, height: float = 3.8):
    try:
        from matplotlib.figure import Figure
    except ImportError:
        from deconvgan.errors import ConfigError

        raise ConfigError(MATPLOTLIB_MISSING) from None
    figure = Figure(figsize=(width_per_panel * columns, height), dpi=DPI, layout="constrained")
    axes = figure.subplots(1, columns, squeeze=False)[0]
    return figure, axes


def _png(figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def colours(combinations: list[str]) -> dict[str, tuple[float, ...]]:
    """A distinct colour per combination (tab10, or tab20 for more than ten)."""
    from matplotlib import colormaps

    cmap = colormaps["tab10" if len(combinations) <= 10 else "tab20"]
    return {c: cmap(i % cmap.N) for i, c in enumerate(combinations)}


def label(combination: str) -> str:
    """``kernel_size-3__g_depth-0`` -> ``kernel_size-3 g_depth-0`` (shorter in legends)."""
    return combination.replace("__", " ")


def curves_png(panels: list[Panel], combinations: list[str]) -> bytes:
    """One subplot per panel, a line per row, coloured by combination; one legend for all."""
    figure, axes = _figure(len(panels))
    palette = colours(combinations)
    for ax, panel in zip(axes, panels, strict=True):
        for combination in combinations:
            for k, (xs, ys) in enumerate(panel.series.get(combination, [])):
                ax.plot(xs, ys, color=palette[combination], alpha=0.85, linewidth=1.2,
                        label=label(combination) if k == 0 else None)
        ax.set(title=panel.title, xlabel=panel.xlabel, ylabel=panel.ylabel)
        ax.grid(alpha=0.3)
    handles, labels = axes[0].get_legend_handles_labels()
    if handles:
        axes[-1].legend(handles, labels, fontsize="small", loc="best")
    return _png(figure)


def cost_png(points: list[CostPoint], metric: str) -> bytes:
    """The final metric (mean ± std over seeds) against G's GFLOP per image and against training minutes."""
    figure, axes = _figure(2)
    palette = colours([p.combination for p in points])
    for ax, attribute, xlabel in ((axes[0], "gflop_per_image", "generator GFLOP per image"),
                                  (axes[1], "train_minutes", "training minutes per run")):
        for point in points:
            x = getattr(point, attribute)
            ax.errorbar([x], [point.mean], yerr=[point.std], fmt="o", capsize=3, color=palette[point.combination],
                        label=label(point.combination))
            ax.annotate(label(point.combination), (x, point.mean), textcoords="offset points", xytext=(4, 4),
                        fontsize="x-small")
        ax.set(xlabel=xlabel, ylabel=f"final {metric}", title=f"final {metric} against cost")
        ax.grid(alpha=0.3)
    return _png(figure)
