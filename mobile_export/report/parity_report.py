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
    if record.get("runtime"):
        lines += [f"Export run by: {record['runtime']}.", ""]
    if record.get("saturated"):
        lines += [
            f"> {record['saturated']} photos reached the largest value the quantized output can hold, "
            "so their top classes may tie and the answer may be wrong.",
            "",
        ]
    rescue = (record.get("recipe") or {}).get("rescue")
    if record.get("float_ops"):
        ops = ", ".join(f"{count} {op}" for op, count in record["float_ops"].items())
        reason = (
            "the rescue kept their blocks in float (see below)"
            if rescue and rescue["float_blocks"]
            else "this mode has no integer kernel for them"
        )
        lines += [
            f"> Ops running in float because {reason}: {ops}. Each one dequantizes its input and "
            "quantizes its output, which costs speed.",
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
    lines += _recipe_lines(record.get("recipe"), record)
    lines += _kernel_lines(record.get("reference_kernels"))
    for key, title in (("fp16_compute", "With float16 compute"), ("native", "Native Core ML predict")):
        other = record.get(key)
        if other:
            lines += [
                f"## {title}",
                "",
                f"{other['runtime']}: top-1 {other['images'] - other['top1_changed']}/{other['images']}, "
                f"cosine min {other['cosine_min']:.4f}, SQNR {other['sqnr_db']:.1f} dB, "
                f"max abs error {_format(other['max_abs_error'])}.",
                "",
            ]
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


def _kernel_lines(kernels: dict | None) -> list[str]:
    """Compare the export on LiteRT's reference kernels with the XNNPACK run the table above comes from."""
    if not kernels:
        return []
    photos = kernels["photos"]
    top1_kept = round(kernels["top1_agreement"] * photos)
    lines = [
        "## Reference kernels",
        "",
        f"The table above comes from LiteRT's default XNNPACK kernels for this CPU. On LiteRT's reference "
        f"kernels, over {photos} photos: top-1 kept {top1_kept}/{photos}, cosine min {kernels['cosine_min']:.4f}, "
        f"SQNR {kernels['sqnr_db']:.1f} dB. Outputs differ from XNNPACK's by up to "
        f"{kernels['max_abs_difference_from_xnnpack']:.3g} (in output units).",
        "",
    ]
    if not kernels["answers_differ"]:
        return lines + ["Every photo has the same top-1 class on both kernels.", ""]
    lines += [
        "These photos' top-1 classes depend on the kernels. They sit near a tie and may differ on a phone too:",
        "",
        "| photo | XNNPACK top-1 | reference top-1 |",
        "|---|---|---|",
    ]
    lines += [f"| {row['image']} | {row['xnnpack']} | {row['reference']} |" for row in kernels["answers_differ"]]
    return lines + [""]


def _recipe_lines(recipe: dict | None, record: dict) -> list[str]:
    """Describe how an int8 export was quantized and, when the rescue searched, what it kept in float."""
    if not recipe:
        return []
    lines = [
        "## int8 recipe",
        "",
        f"Activation ranges: {recipe['activation_ranges']} ({recipe['ranges_narrowed']} tensors narrowed).",
        "",
    ]
    scores = recipe.get("calibration_sqnr_db")
    if scores:
        lines[-1:-1] = [
            f"On calibration samples the output SQNR was {scores['least_error']:.1f} dB with least-error ranges "
            f"and {scores['calibrator']:.1f} dB with the calibrator's min/max; the better one was kept."
        ]
    rescue = recipe.get("rescue")
    if not rescue:
        if recipe["activation_ranges"] != "calibrator min/max" or scores:
            lines += ["No block search: every layer is int8, since the gate passed without one or the weights are random.", ""]
        return lines
    before, cost = rescue["validation_before"], rescue["cost"]
    blocks = ", ".join(rescue["float_blocks"]) or "none"
    lines += [
        f"The gate failed with every layer int8 (SQNR {before['sqnr_db']:.1f} dB, top-1 agreement "
        f"{before['top1_agreement']:.2f}), so the rescue searched for blocks to keep in float, measuring "
        f"on calibration samples: SQNR {rescue['calibration_sqnr_db_before']:.1f} to "
        f"{rescue['calibration_sqnr_db_after']:.1f} dB against a target of {rescue['target_sqnr_db']:.1f} dB "
        f"({'reached' if rescue['reached'] else 'not reached'}). Kept in float: {blocks}.",
        "",
    ]
    if "size_bytes_after" in cost:
        images = record["images"]
        top1_before = round(before["top1_agreement"] * images)
        top1_after = images - record["top1_changed"]
        lines += [
            "| | top-1 kept | SQNR dB | size MB | latency ms, 1 thread |",
            "|---|---|---|---|---|",
            f"| every layer int8 | {top1_before}/{images} | {before['sqnr_db']:.1f} | "
            f"{cost['size_bytes_before'] / 1e6:.2f} | {cost['latency_ms_before']:.2f} |",
            f"| rescued | {top1_after}/{images} | {record['sqnr_db']:.1f} | "
            f"{cost['size_bytes_after'] / 1e6:.2f} | {cost['latency_ms_after']:.2f} |",
            "",
        ]
        if top1_after < top1_before:
            lines += [
                f"The rescue chose its blocks on calibration samples, and on the validation photos it kept "
                f"{top1_before - top1_after} top-1 class(es) fewer than every layer int8 did.",
                "",
            ]
    return lines
