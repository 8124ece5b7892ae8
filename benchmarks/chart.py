"""The standings at a glance: the per-scenario ratios of one run as a PNG (matplotlib, Agg).

One row per pair of the ratio table (wsgisession / a peer doing the same job on the same
service), one column per scenario; each cell shows the ratio and is green where wsgisession
is faster, red where it is slower, on a log scale centred on 1.
"""

from __future__ import annotations

import math
import os
import textwrap
from pathlib import Path

from .inprocess import FLOOR_PAIRS, PAIRS, SCENARIOS, Results, ratio_cell

ROOT = Path(__file__).resolve().parent.parent
#: Where ``make bench`` writes the chart, for the README and the docs.
DEFAULT_PATH = ROOT / "docs" / "_static" / "bench-ratios.png"


def rows(results: Results) -> tuple[list[str], list[list[float | None]]]:
    """The row labels and the ratio of each pair per scenario (None where missing)."""
    labels: list[str] = []
    values: list[list[float | None]] = []
    for ours, theirs in PAIRS + FLOOR_PAIRS:
        a, b = results.row(ours), results.row(theirs)
        if a is None or b is None:
            continue
        labels.append(f"{a.label}  /  {b.label}")
        values.append([results.ratio(ours, theirs, s) for s in SCENARIOS[1:]])
    return labels, values


def write(results: Results, path: str | os.PathLike[str], subtitle: str = "") -> Path | None:
    """Draw the ratio chart of *results* into *path* (folders made); None when nothing to draw."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import LogNorm

    labels, values = rows(results)
    if not labels:
        return None
    scenarios = SCENARIOS[1:]
    grid = [[math.nan if v is None else max(v, 0.01) for v in row] for row in values]
    fig_height = 1.6 + 0.42 * len(labels)
    fig, ax = plt.subplots(figsize=(11, fig_height), dpi=110)
    norm = LogNorm(vmin=0.1, vmax=10)
    cmap = matplotlib.colormaps["RdYlGn_r"].copy()
    cmap.set_bad("#eeeeee")
    ax.imshow(grid, cmap=cmap, norm=norm, aspect="auto")
    for i, row in enumerate(values):
        for j, value in enumerate(row):
            text = ratio_cell(value, "×")  # noqa: RUF001
            dark = value is not None and (value < 0.2 or value > 5)
            ax.text(
                j, i, text, ha="center", va="center", fontsize=9,
                color="white" if dark else "black",
            )  # fmt: skip
    ax.set_xticks(range(len(scenarios)), scenarios)
    ax.xaxis.tick_top()
    ax.set_yticks(range(len(labels)), labels, fontsize=9)
    ax.tick_params(length=0)
    for spine in ax.spines.values():
        spine.set_visible(False)
    ax.set_xticks([x - 0.5 for x in range(1, len(scenarios))], minor=True)
    ax.set_yticks([y - 0.5 for y in range(1, len(labels))], minor=True)
    ax.grid(which="minor", color="white", linewidth=2)
    ax.tick_params(which="minor", length=0)
    title = "wsgisession / peer, median µs per request in process (below 1× is faster)"  # noqa: RUF001
    fig.suptitle(title, fontsize=11, x=0.01, ha="left")
    note = (
        "Inside Flask or Django, the framework's own cost is taken off both sides. "
        "Green: wsgisession faster; red: slower."
    )
    subtitle = textwrap.fill(subtitle, 160)
    fig.text(0.01, 0.005, note + (f"\n{subtitle}" if subtitle else ""), fontsize=7.5,
             ha="left", va="bottom", color="#444444")  # fmt: skip
    fig.tight_layout(
        rect=(0, 0.03 + 0.02 * (subtitle.count(chr(10)) + 1 if subtitle else 0), 1, 0.97)
    )
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(target)
    plt.close(fig)
    return target
