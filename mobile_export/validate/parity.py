"""Parity metrics between the float Keras model and an export, and the gate that judges them.

All metrics compare the two models' output vectors image by image (logits, or probabilities for
models that end in a softmax):

- ``top1_agreement``: share of images whose top-1 class is the same.
- ``top5_agreement``: share of images whose float top-1 class is among the export's top 5.
- ``cosine_mean`` / ``cosine_min``: cosine similarity of the two output vectors.
- ``sqnr_db``: median over images of the signal-to-quantization-noise ratio
  ``10 * log10(sum(f ** 2) / sum((f - q) ** 2))``; ``sqnr_db_min`` is the worst image.
- ``max_abs_error``: the largest absolute difference of any output over all images.

These are agreement measures, not accuracy: they measure whether the phone will give the float
model's predictions, right or wrong.
"""

from __future__ import annotations

import dataclasses

import numpy as np

# A perfect match has infinite SQNR; JSON has no infinity, so it is capped here.
MAX_SQNR_DB = 200.0


@dataclasses.dataclass(frozen=True)
class Gate:
    """Thresholds an export must meet; ``None`` leaves a metric unchecked."""

    min_top1_agreement: float | None = None
    min_top5_agreement: float | None = None
    min_cosine: float | None = None
    min_sqnr_db: float | None = None
    max_abs_error: float | None = None

    def failures(self, metrics: dict) -> list[str]:
        """Return one sentence per threshold that ``metrics`` misses."""
        checks = (
            ("top1_agreement", self.min_top1_agreement, ">="),
            ("top5_agreement", self.min_top5_agreement, ">="),
            ("cosine_min", self.min_cosine, ">="),
            ("sqnr_db", self.min_sqnr_db, ">="),
            ("max_abs_error", self.max_abs_error, "<="),
        )
        failures = []
        for key, threshold, relation in checks:
            if threshold is None:
                continue
            value = metrics[key]
            passed = value >= threshold if relation == ">=" else value <= threshold
            if not passed:
                failures.append(f"{key} {value:.4g} is not {relation} {threshold:g}")
        return failures

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


# Defaults per mode, measured with the torchvision ImageNet MobileNetV2 at 224 on the 13 bundled
# validation photos (calibration on the 9 bundled calibration photos, seeds 0-3):
# - fp32 TFLite differs from Keras only by float reordering (max error 3.5e-5 on logits of
#   magnitude 10-20), so any changed answer or an error above 1e-3 means a broken conversion.
# - Full int8 keeps 12 of 13 top-1 answers, cosine min 0.915-0.932, median SQNR 10.9-11.8 dB,
#   every float top-1 within the int8 top 5. The float model fed wrongly prepared pixels scores:
#   BGR order 9/13, cosine min 0.83, 6.5 dB; a zero point misread by 128 8/13, 0.68, 4.4 dB;
#   Keras' [-1, 1] scaling instead of torchvision's mean/std 10/13, 0.75, 8.6 dB. The int8 gate sits
#   between the two groups, so those mistakes fail it and an honest int8 export passes.
# - fp16 keeps every answer: cosine min 1.0000, SQNR 47 dB, max error 0.13.
# - Dynamic range keeps 13/13, cosine min 0.996, 25.5 dB.
# - int16x8 keeps 12/13, cosine min 0.985, 20.4 dB.
#   Their gates sit a few dB and a little cosine below those values and far above the mistakes.
DEFAULT_GATES = {
    "fp32": Gate(min_top1_agreement=1.0, min_top5_agreement=1.0, min_cosine=0.9999, max_abs_error=1e-3),
    "int8": Gate(min_top1_agreement=0.7, min_top5_agreement=0.9, min_cosine=0.88, min_sqnr_db=9.0),
    "fp16": Gate(min_top1_agreement=1.0, min_top5_agreement=1.0, min_cosine=0.999, min_sqnr_db=35.0),
    "dynamic": Gate(min_top1_agreement=0.85, min_top5_agreement=1.0, min_cosine=0.98, min_sqnr_db=18.0),
    "int16x8": Gate(min_top1_agreement=0.75, min_top5_agreement=1.0, min_cosine=0.95, min_sqnr_db=15.0),
}

# Core ML gates, keyed "coreml-<mode>" so they stay apart from the TFLite modes of the same name.
# Measured the same way, with the package run by mobile_export.runtime.coreml at its own precision:
# - fp32 differs from Keras by less than 2e-5, SQNR 118 dB, so 1e-4 leaves room for summation order.
# - fp16 (float16 weights and compute) keeps 13/13 at 46.5 to 46.9 dB, cosine min 1.0000, max error 0.14.
# - int8-weights keeps 13/13 at 26.7 dB, cosine min 0.9968; palette8 13/13 at 28.2 dB, 0.9977.
# - palette6 keeps 10/13 at 14.7 dB, cosine min 0.950, every float top-1 in its top 5.
# - Each bit fewer costs MobileNetV2 about 6 dB, so palette4 (2/13, 3.5 dB, cosine 0.55) and
#   palette2 (0/13) fall below the wrongly-prepared-pixels cluster. Their gate is int8's, the
#   lowest that still separates a working export from a broken one, so they fail it loudly.
# NOTE: coreml-int8 (W8A8) builds only on macOS and was not measured here; it takes int8's gate.
DEFAULT_GATES |= {
    "coreml-fp32": Gate(min_top1_agreement=1.0, min_top5_agreement=1.0, min_cosine=0.9999, max_abs_error=1e-4),
    "coreml-fp16": Gate(min_top1_agreement=1.0, min_top5_agreement=1.0, min_cosine=0.999, min_sqnr_db=35.0),
    "coreml-int8-weights": Gate(min_top1_agreement=0.85, min_top5_agreement=1.0, min_cosine=0.98, min_sqnr_db=18.0),
    "coreml-palette8": Gate(min_top1_agreement=0.85, min_top5_agreement=1.0, min_cosine=0.98, min_sqnr_db=18.0),
    "coreml-palette6": Gate(min_top1_agreement=0.65, min_top5_agreement=1.0, min_cosine=0.9, min_sqnr_db=11.0),
    "coreml-palette4": DEFAULT_GATES["int8"],
    "coreml-palette2": DEFAULT_GATES["int8"],
    "coreml-int8": DEFAULT_GATES["int8"],
}


def gate_for(mode: str, overrides: dict | None = None) -> Gate:
    """Return the default gate for ``mode`` (a TFLite mode, or ``coreml-<mode>``) with user overrides
    (fields of :class:`Gate`) applied."""
    gate = DEFAULT_GATES[mode]
    overrides = {key: value for key, value in (overrides or {}).items() if value is not None}
    return dataclasses.replace(gate, **overrides)


def _sqnr_db(reference: np.ndarray, test: np.ndarray) -> float:
    noise = float(np.sum((reference - test) ** 2))
    signal = float(np.sum(reference**2))
    if noise == 0.0:
        return MAX_SQNR_DB
    if signal == 0.0:
        return -MAX_SQNR_DB
    return min(MAX_SQNR_DB, 10.0 * np.log10(signal / noise))


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    norm = float(np.linalg.norm(a) * np.linalg.norm(b))
    return float(np.dot(a, b) / norm) if norm > 0 else 0.0


def compare(
    reference: np.ndarray,
    export: np.ndarray,
    *,
    names: list[str],
    labels: list[str],
    output_limits: tuple[float, float] | None = None,
) -> dict:
    """Compare float outputs ``reference`` with ``export`` outputs, both ``(images, classes)``.

    ``output_limits`` are the quantized output's smallest and largest values; a photo whose top
    output sits at the largest one is counted as saturated, because its top classes may tie.
    """
    reference = reference.astype(np.float64)
    export = export.astype(np.float64)
    if reference.shape != export.shape:
        raise ValueError(f"Output shapes differ: float {reference.shape}, export {export.shape}.")

    per_image = []
    for name, ref, out in zip(names, reference, export, strict=True):
        ref_top1 = int(np.argmax(ref))
        out_top5 = [int(i) for i in np.argsort(-out, kind="stable")[:5]]
        per_image.append(
            {
                "image": name,
                "float_top1": ref_top1,
                "float_top1_label": labels[ref_top1],
                "export_top1": out_top5[0],
                "export_top1_label": labels[out_top5[0]],
                "top1_match": out_top5[0] == ref_top1,
                "float_top1_in_export_top5": ref_top1 in out_top5,
                "cosine": _cosine(ref, out),
                "sqnr_db": _sqnr_db(ref, out),
                "max_abs_error": float(np.max(np.abs(ref - out))),
                "saturated": output_limits is not None and bool(np.max(out) >= output_limits[1]),
            }
        )

    cosines = [row["cosine"] for row in per_image]
    sqnrs = [row["sqnr_db"] for row in per_image]
    return {
        "images": len(per_image),
        "top1_agreement": float(np.mean([row["top1_match"] for row in per_image])),
        "top1_changed": sum(not row["top1_match"] for row in per_image),
        "saturated": sum(row["saturated"] for row in per_image),
        "top5_agreement": float(np.mean([row["float_top1_in_export_top5"] for row in per_image])),
        "cosine_mean": float(np.mean(cosines)),
        "cosine_min": float(np.min(cosines)),
        "sqnr_db": float(np.median(sqnrs)),
        "sqnr_db_min": float(np.min(sqnrs)),
        "max_abs_error": float(np.max(np.abs(reference - export))),
        "per_image": per_image,
    }


def judge(metrics: dict, gate: Gate) -> dict:
    """Return the ``gate`` record for parity.json: thresholds, pass/fail, and why."""
    failures = gate.failures(metrics)
    return {"passed": not failures, "failures": failures, "thresholds": gate.to_dict()}
