"""The report's figures, drawn with matplotlib's file-only backend."""

from __future__ import annotations

from pathlib import Path

import numpy as np

# Uniform rounding over one quantization step has a standard deviation of 1/sqrt(12).
ROUNDING_ONLY = 1.0 / np.sqrt(12.0)


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def scatter(reference: np.ndarray, export: np.ndarray, path: Path, *, title: str, output_kind: str) -> None:
    """Plot every output value of the export against the float model's, with the y = x line."""
    plt = _pyplot()
    figure, axes = plt.subplots(figsize=(5, 5), dpi=100)
    axes.scatter(reference.ravel(), export.ravel(), s=2, alpha=0.3, linewidths=0)
    low = float(min(reference.min(), export.min()))
    high = float(max(reference.max(), export.max()))
    axes.plot([low, high], [low, high], color="black", linewidth=0.8)
    axes.set_xlabel(f"float Keras {output_kind}")
    axes.set_ylabel(f"exported {output_kind}")
    axes.set_title(title)
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)


def layer_bars(rows: list[dict], path: Path, *, title: str, top: int = 15) -> None:
    """Plot the ``top`` layers with the largest RMSE over scale as horizontal bars."""
    plt = _pyplot()
    shown = rows[:top][::-1]
    figure, axes = plt.subplots(figsize=(7, 0.35 * len(shown) + 1.2), dpi=100)
    axes.barh([f"{row['layer']} ({row['op']})" for row in shown], [row["rmse_over_scale"] for row in shown])
    axes.axvline(ROUNDING_ONLY, color="black", linewidth=0.8, linestyle="--", label="rounding alone")
    axes.set_xlabel("RMSE / scale (quantization steps)")
    axes.set_title(title)
    axes.legend(loc="lower right")
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)


def latency_against_agreement(rows: list[dict], path: Path, *, threads: int) -> None:
    """Plot each export's latency against its top-1 agreement with its float model, with marker area by file size.

    This is the papers' accuracy-against-MACs figure drawn with measurements from ``bench``: the
    left panel at 1 thread, the right at ``threads`` threads. Ours are filled, naive exports hollow.
    """
    plt = _pyplot()
    figure, panels = plt.subplots(1, 2, figsize=(10, 4.5), dpi=100, sharey=True)
    largest = max(row["size_mb"] for row in rows)
    colors = {"fp32": "tab:blue", "int8": "tab:orange"}
    for axes, key, title in (
        (panels[0], "latency_1_thread_ms", "1 thread"),
        (panels[1], f"latency_{threads}_threads_ms", f"{threads} threads"),
    ):
        for row in rows:
            if row["top1_agreement"] is None:
                continue
            color = colors.get(row["mode"], "tab:green")
            naive = row["origin"] == "naive"
            axes.scatter(
                row[key],
                100 * row["top1_agreement"],
                s=40 + 400 * row["size_mb"] / largest,
                facecolors="none" if naive else color,
                edgecolors=color,
                linewidths=1.5,
            )
            axes.annotate(
                f"{'naive ' if naive else ''}{row['mode']}, {row['size_mb']:.1f} MB",
                (row[key], 100 * row["top1_agreement"]),
                textcoords="offset points",
                xytext=(8, 4 if naive else -10),
                fontsize=8,
            )
        axes.set_xlabel(f"LiteRT latency, {title} (ms, median)")
        axes.set_title(f"XNNPACK, {title}")
        axes.grid(alpha=0.3)
    panels[0].set_ylabel("top-1 agreement with its float model (%)")
    figure.suptitle("Latency against top-1 agreement; marker area is file size, hollow markers are naive")
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
