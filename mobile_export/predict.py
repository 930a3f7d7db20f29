"""Classify photos with an exported model, through the input contract recorded in its manifest."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from mobile_export.contract import InputContract


class ExportFolderError(ValueError):
    """The given path is not an export (model file with its manifest, or its folder)."""


def locate_export(model: str | Path) -> tuple[Path, dict]:
    """Return ``(model file, manifest)`` for a model file, an export folder, or a one-export OUT."""
    path = Path(model)
    if not path.exists():
        raise ExportFolderError(
            f"{path} does not exist; pass an exported .tflite file, .mlpackage, or its export folder."
        )
    if path.suffix == ".mlpackage":
        folder = path.parent
    else:
        folder = path if path.is_dir() else path.parent

    manifest_path = folder / "manifest.json"
    if folder == path and not manifest_path.is_file():
        exports = sorted(p.name for p in folder.iterdir() if (p / "manifest.json").is_file())
        if len(exports) == 1:
            return locate_export(folder / exports[0])
        if exports:
            raise ExportFolderError(
                f"{path} contains several exports ({', '.join(exports)}); pass one of them, e.g. {path / exports[0]}."
            )
    if not manifest_path.is_file():
        raise ExportFolderError(
            f"No manifest.json in {folder}; pass a folder written by `mobile-export build` or a model file inside one."
        )

    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        model_file = folder / manifest["model"]["file"]
        labels_file = folder / manifest["labels"]["file"]
        InputContract.from_dict(manifest["input"])
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as error:
        raise ExportFolderError(f"{manifest_path} is damaged ({type(error).__name__}: {error}); rebuild the export.") from None
    if not labels_file.is_file():
        raise ExportFolderError(f"{manifest_path} names {labels_file.name}, which is missing; rebuild the export.")
    if folder != path and path.resolve() != model_file.resolve():
        raise ExportFolderError(f"{path} is not the model that {manifest_path} describes ({model_file.name}).")
    # A Core ML model is an .mlpackage folder, a TFLite model a file.
    if not model_file.exists():
        raise ExportFolderError(f"{manifest_path} names {model_file.name}, which is missing; rebuild the export.")

    from mobile_export.convert.coreml import package_sha256

    expected = manifest["files"].get(model_file.name)
    if expected != package_sha256(model_file):
        raise ExportFolderError(
            f"{model_file} does not match the sha256 in its manifest; it was changed after export. Rebuild it."
        )
    return model_file, manifest


class CoreMLScores:
    """A saved .mlpackage run by mobile-export's own ML Program execution, returning its raw scores.

    It has the interface of :class:`~mobile_export.runtime.litert.LiteRTModel` that ``predict``,
    ``evaluate`` and the golden vectors use: ``run(pixels)`` for one ``HxWx3`` uint8 image, and
    ``input["shape"]`` with ``run_raw(tensor)`` for the raw input tensor.
    """

    def __init__(self, package: Path, *, output: str, input_shape, precision: str = "model"):
        from mobile_export.runtime.coreml import CoreMLProgram

        self._program = CoreMLProgram(package, precision=precision)
        self._output = output
        self.input = {"shape": list(input_shape)}
        if precision == "fp16":
            self.description = "mobile-export's numpy execution of the ML Program, every op rounded to float16"
        else:
            self.description = "mobile-export's numpy execution of the ML Program, in the precision the program states"

    def run(self, pixels: np.ndarray) -> np.ndarray:
        outputs = self._program.run(np.asarray(pixels, dtype=np.uint8).reshape(self.input["shape"]))
        return np.asarray(outputs[self._output], dtype=np.float32).reshape(-1)

    def run_raw(self, tensor: np.ndarray) -> np.ndarray:
        return self.run(tensor)

    def run_all(self, images: np.ndarray, progress=None) -> np.ndarray:
        outputs = []
        for index, pixels in enumerate(images):
            outputs.append(self.run(pixels))
            if progress is not None:
                progress(index + 1, len(images))
        return np.stack(outputs)

    def output_limits(self) -> None:
        """Core ML outputs are floating point, so no value saturates."""
        return None

    def op_counts(self) -> dict[str, int]:
        return {op: int(count) for op, count in sorted(self._program.ops.items())}


def open_runner(model_file: Path, manifest: dict):
    """Return a runner for an export: LiteRT for TFLite, mobile-export's own execution for Core ML."""
    if manifest["model"].get("target", "tflite") == "coreml":
        return CoreMLScores(model_file, output=manifest["output"]["tensor"], input_shape=manifest["input"]["shape"])
    from mobile_export.runtime.litert import LiteRTModel

    return LiteRTModel(model_file)


def _softmax(values: np.ndarray) -> np.ndarray:
    shifted = np.exp(values - np.max(values))
    return shifted / np.sum(shifted)


def predict(model: str | Path, images: Sequence[str | Path], *, top_k: int = 5) -> list[dict]:
    """Run an exported model on photos and return the top-k labels with scores per photo.

    Each photo is decoded, centre-cropped and resized exactly as the manifest's input contract
    says, quantized with the model's own input scale and zero point, and the output is
    dequantized; logits become probabilities through a softmax. A Core ML export runs in
    mobile-export's own execution of its ML Program and is scored on its raw-scores output.

    Returns:
        One dict per photo: ``{"image": path, "top": [{"index", "label", "score"}, ...],
        "saturated": bool}``; saturated means the top output hit the largest value a quantized
        output can hold, so the top classes may tie. An unreadable photo found in a folder gets
        an empty ``top`` and ``"skipped"``: the reason; a photo named directly raises.
    """
    from mobile_export.data import ImageError, list_images, load_rgb, read_labels

    model_file, manifest = locate_export(model)
    input_contract = InputContract.from_dict(manifest["input"])
    # A photo named on the command line must be readable; one found in a folder may be skipped.
    named = [(Path(image), False) for image in images if not Path(image).is_dir()]
    found = [(path, True) for image in images if Path(image).is_dir() for path in list_images(image)]
    labels = read_labels(model_file.parent / manifest["labels"]["file"])
    runner = open_runner(model_file, manifest)

    results = []
    for image, skippable in named + found:
        try:
            rgb = load_rgb(image)
        except ImageError as error:
            if not skippable:
                raise
            results.append({"image": str(image), "top": [], "saturated": False, "skipped": str(error)})
            continue
        pixels = input_contract.prepare(rgb)
        output = runner.run(pixels)
        scores = _softmax(output) if manifest["output"]["kind"] == "logits" else output
        order = np.argsort(-scores, kind="stable")[:top_k]
        limits = runner.output_limits()
        results.append(
            {
                "image": str(image),
                "top": [{"index": int(i), "label": labels[i], "score": float(scores[i])} for i in order],
                "saturated": limits is not None and bool(np.max(output) >= limits[1]),
            }
        )
    return results


def warnings_for(model: str | Path) -> list[str]:
    """Facts about an export that a user must see next to its predictions."""
    _, manifest = locate_export(model)
    notes = []
    if not manifest["weights"].get("pretrained", True):
        notes.append("this export has random weights, not a trained model: its labels mean nothing")
    if manifest.get("status") == "parity-failed":
        notes.append("this export failed its parity gate; see parity.md beside it")
    return notes
