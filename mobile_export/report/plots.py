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
