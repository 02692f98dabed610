"""PNG plots of a consistency report (matplotlib, no display needed). Models measured with random weights are
labelled ``[random weights]`` and drawn hatched (bars) or dashed (lines)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from ..infra.fs import atomic_path  # noqa: E402
from .report import ConsistencyReport  # noqa: E402


def _save(fig, path: str) -> None:
    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=120, bbox_inches="tight", format="png")
    finally:
        plt.close(fig)


def plot_diagonal(report: ConsistencyReport, path: str) -> None:
    """True-class probability against diagonal offset, one line per model (the paper's figure)."""
    fig, ax = plt.subplots(figsize=(6, 4))
    for row in report.rows(protocol="diagonal"):
        ax.plot(row.extra["diagonal_offsets"], row.extra["true_class_prob"], marker=".", label=row.label,
                linestyle="--" if row.random_weights else "-")
    ax.set_xlabel("diagonal shift (pixels)")
    target = next(iter(report.rows(protocol="diagonal"))).extra["target"]
    ax.set_ylabel(f"mean probability of the {'true class' if target == 'label' else 'center-crop class'}")
    ax.set_title(f"Diagonal shifts ({report.data['num_images']} images)")
    ax.grid(alpha=0.3)
    ax.legend()
    _save(fig, path)


def plot_consistency(report: ConsistencyReport, path: str) -> None:
    """Grouped bars: consistency per protocol, one bar per model."""
    protocols = list(dict.fromkeys(r.protocol for r in report.results))
    models = list(dict.fromkeys(r.model for r in report.results))
    fig, ax = plt.subplots(figsize=(1.8 + 1.6 * len(protocols), 4))
    width = 0.8 / len(models)
    for i, model in enumerate(models):
        rows = {r.protocol: r for r in report.rows(model=model)}
        values = [(rows[p].consistency or 0.0) if p in rows else 0.0 for p in protocols]
        xs = [j + (i - (len(models) - 1) / 2) * width for j in range(len(protocols))]
        first = next(iter(rows.values()))
        bars = ax.bar(xs, values, width, label=first.label, hatch="//" if first.random_weights else None)
        ax.bar_label(bars, fmt="%.1f", fontsize=7)
    ax.set_xticks(range(len(protocols)), protocols)
    ax.set_ylabel("consistency (%)")
    ax.set_ylim(0, 105)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1))  # beside the axes: never over a bar
    ax.set_title("Shift consistency")
    _save(fig, path)
