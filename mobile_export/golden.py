"""Golden vectors: cases that the Android and iOS app cores must reproduce exactly.

Each export folder gets ``golden.json``. A case holds a real photo's decoded RGB pixels, the
prepared model-size pixels, the exact input tensor bytes, the raw output tensor bytes the model
produced, and the top-5 labels with scores. The Python, Kotlin and Swift tests all check the same
files, so a preprocessing or dequantization difference between Python and an app fails a test.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import numpy as np

from mobile_export.contract import InputContract

GOLDEN_FILE = "golden.json"
# Two real photos; the first is also used rotated by 90 degrees, so that a portrait photo takes the
# resize's other branch (both photos are landscape relative to the bundled model sizes).
PREFERRED_PHOTOS = ("chelsea.png", "coins.png")
MAX_PHOTO_SIDE = 512
TOP_K = 5

_DTYPES = {"uint8": "<u1", "int8": "<i1", "int16": "<i2", "float32": "<f4"}


def quantize_input(pixels: np.ndarray, *, dtype: str, scale: float, zero_point: int) -> np.ndarray:
    """Return the input tensor for prepared uint8 ``pixels`` as the manifest's dtype describes it."""
    values = pixels.astype(np.float64)
    if dtype == "float32":
        return values.astype("<f4")
    info = np.iinfo(np.dtype(_DTYPES[dtype]))
    quantized = np.round(values / scale) + zero_point
    return np.clip(quantized, info.min, info.max).astype(_DTYPES[dtype])


def scores(raw: np.ndarray, *, dtype: str, scale: float, zero_point: int, kind: str) -> np.ndarray:
    """Return class scores: dequantized outputs, through a softmax when they are logits."""
    values = raw.astype(np.float64)
    if dtype != "float32":
        values = (values - zero_point) * scale
    if kind == "logits":
        shifted = np.exp(values - values.max())
        return shifted / shifted.sum()
    return values


def top_k(values: np.ndarray, labels: list[str], k: int = TOP_K) -> list[dict]:
    """Return the ``k`` best classes, ties broken by the lower index."""
    order = np.argsort(-values, kind="stable")[:k]
    return [{"index": int(i), "label": labels[i], "score": float(values[i])} for i in order]


def _b64(array: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(array).tobytes()).decode("ascii")


def golden_photos(paths: list[Path]) -> list[Path]:
    chosen = [path for path in paths if path.name in PREFERRED_PHOTOS]
    return chosen or paths[:2]


def _case_photo(path: Path) -> np.ndarray:
    from PIL import Image

    from mobile_export.data import load_rgb

    rgb = load_rgb(path)
    if max(rgb.shape[:2]) > MAX_PHOTO_SIDE:
        # Keeps the file small; the downscaled pixels are the case's photo from here on.
        scale = MAX_PHOTO_SIDE / max(rgb.shape[:2])
        size = (round(rgb.shape[1] * scale), round(rgb.shape[0] * scale))
        rgb = np.asarray(Image.fromarray(rgb).resize(size, Image.BILINEAR))
    return rgb


def write_golden(folder: Path, manifest: dict, runner, labels: list[str], photos: list[Path]) -> None:
    """Run the exported model on ``photos``: a :class:`~mobile_export.runtime.litert.LiteRTModel`, or a
    :class:`~mobile_export.predict.CoreMLScores` for a Core ML export, whose raw output is float32."""
    contract = InputContract.from_dict(manifest["input"])
    inp, out = manifest["input"], manifest["output"]
    cases = []
    chosen = golden_photos(photos)
    sources = [(path.name, _case_photo(path)) for path in chosen]
    sources.append((f"{chosen[0].name} rotated 90 degrees", np.ascontiguousarray(np.rot90(_case_photo(chosen[0])))))
    for name, photo in sources:
        pixels = contract.prepare(photo)
        tensor = quantize_input(pixels, dtype=inp["dtype"], scale=inp["scale"], zero_point=inp["zero_point"])
        raw = runner.run_raw(tensor.reshape(runner.input["shape"]))
        values = scores(raw, dtype=out["dtype"], scale=out["scale"], zero_point=out["zero_point"], kind=out["kind"])
        cases.append(
            {
                "name": name,
                "photo_height": int(photo.shape[0]),
                "photo_width": int(photo.shape[1]),
                "photo_rgb_base64": _b64(photo),
                "input_rgb_base64": _b64(pixels),
                "input_tensor_base64": _b64(tensor),
                "output_raw_base64": _b64(raw.astype(_DTYPES[out["dtype"]])),
                "top_k": top_k(values, labels),
            }
        )
    golden = {"schema_version": 1, "manifest": "manifest.json", "cases": cases}
    (folder / GOLDEN_FILE).write_text(json.dumps(golden, indent=1) + "\n", encoding="utf-8")


def decode(case: dict, key: str, dtype: str) -> np.ndarray:
    """Decode one base64 field of a case into a flat array of ``dtype``."""
    return np.frombuffer(base64.b64decode(case[key]), dtype=_DTYPES[dtype])
