"""parity.json (data) and parity.md (the same facts for people) for one export."""

from __future__ import annotations

import json
from pathlib import Path

METRIC_ROWS = (
    ("top1_agreement", "Top-1 agreement", "share of photos whose top-1 class is the float model's"),
    ("top5_agreement", "Top-5 agreement", "share of photos whose float top-1 is in the export's top 5"),
    ("cosine_mean", "Cosine (mean)", "cosine similarity of the output vectors"),
    ("cosine_min", "Cosine (min)", "worst photo"),
    ("sqnr_db", "SQNR, dB (median)", "10·log10(signal / quantization noise) of the outputs"),
    ("sqnr_db_min", "SQNR, dB (min)", "worst photo"),
    ("max_abs_error", "Max abs error", "largest output difference over all photos"),
)


def write_parity(folder: Path, record: dict) -> None:
    """Write ``parity.json`` and ``parity.md``; ``record`` is the metrics plus ``gate`` and context."""
    (folder / "parity.json").write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    (folder / "parity.md").write_text(render_markdown(record), encoding="utf-8")


def _format(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def render_markdown(record: dict) -> str:
    gate = record["gate"]
    verdict = "PASSED" if gate["passed"] else "FAILED"
    changed = record["top1_changed"]
    lines = [
        f"# Parity: {record['export']}",
        "",
        f"**Gate {verdict}.** {changed} of {record['images']} validation photos changed their top-1 "
        f"answer against the float Keras model.",
        "",
    ]
    if record.get("saturated"):
        lines += [
            f"> {record['saturated']} photos reached the largest value the quantized output can hold, "
            "so their top classes may tie and the answer may be wrong.",
            "",
        ]
    if record.get("float_ops"):
        ops = ", ".join(f"{count} {op}" for op, count in record["float_ops"].items())
        lines += [
            f"> Ops running in float because this mode has no integer kernel for them: {ops}. Each one "
            "dequantizes its input and quantizes its output, which costs speed.",
            "",
        ]
    if record.get("overridden"):
        lines += [f"> Gate thresholds overridden for this build: {', '.join(record['overridden'])}.", ""]
    if not record.get("pretrained", True):
        lines += [
            "> These weights are a random initialization, not a trained model: agreement is "
            "measured, but the labels mean nothing.",
            "",
        ]
    if gate["failures"]:
        lines += ["Failed thresholds:", ""] + [f"- {failure}" for failure in gate["failures"]] + [""]

    thresholds = gate["thresholds"]
    threshold_by_metric = {
        "top1_agreement": thresholds.get("min_top1_agreement"),
        "top5_agreement": thresholds.get("min_top5_agreement"),
        "cosine_min": thresholds.get("min_cosine"),
        "sqnr_db": thresholds.get("min_sqnr_db"),
        "max_abs_error": thresholds.get("max_abs_error"),
    }
    lines += ["| metric | value | gate | meaning |", "|---|---|---|---|"]
    for key, title, meaning in METRIC_ROWS:
        threshold = threshold_by_metric.get(key)
        relation = "≤" if key == "max_abs_error" else "≥"
        gate_text = f"{relation} {threshold:g}" if threshold is not None else ""
        lines.append(f"| {title} | {_format(record[key])} | {gate_text} | {meaning} |")

    lines += ["", "## Per photo", "", "| photo | float top-1 | export top-1 | cosine | SQNR dB |", "|---|---|---|---|---|"]
    for row in record["per_image"]:
        mark = "" if row["top1_match"] else " **(changed)**"
        mark += " (saturated)" if row.get("saturated") else ""
        lines.append(
            f"| {row['image']} | {row['float_top1']} {row['float_top1_label']} | "
            f"{row['export_top1']} {row['export_top1_label']}{mark} | {row['cosine']:.4f} | {row['sqnr_db']:.1f} |"
        )
    lines += ["", "![float against exported outputs](scatter.png)", ""]
    if record.get("layers"):
        lines += [
            "## Layers with the largest quantization error",
            "",
            "RMSE between each tensor's float and dequantized values, in quantization steps. Rounding alone "
            "gives 0.29; much more means clipped ranges or error carried from earlier layers.",
            "",
            "| layer | op | RMSE / scale |",
            "|---|---|---|",
        ]
        lines += [f"| {row['layer']} | {row['op']} | {row['rmse_over_scale']:.2f} |" for row in record["layers"]]
        lines += ["", "![largest per-layer error](layer_errors.png)", ""]
    lines += [
        "",
        f"Validation photos: {record['validation_source']}. Outputs compared: {record['output_kind']}.",
        "Agreement says whether the exported model gives the float model's answers; it is not accuracy.",
        "",
    ]
    return "\n".join(lines)
