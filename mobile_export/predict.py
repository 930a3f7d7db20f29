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
        raise ExportFolderError(f"{path} does not exist; pass an exported .tflite file or its export folder.")
    folder = path if path.is_dir() else path.parent

    manifest_path = folder / "manifest.json"
    if path.is_dir() and not manifest_path.is_file():
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
    if path.is_file() and path.resolve() != model_file.resolve():
        raise ExportFolderError(f"{path} is not the model that {manifest_path} describes ({model_file.name}).")
    if not model_file.is_file():
        raise ExportFolderError(f"{manifest_path} names {model_file.name}, which is missing; rebuild the export.")

    from mobile_export.models.weights import sha256_of

    expected = manifest["files"].get(model_file.name)
    if expected != sha256_of(model_file):
        raise ExportFolderError(
            f"{model_file} does not match the sha256 in its manifest; it was changed after export. Rebuild it."
        )
    return model_file, manifest


def _softmax(values: np.ndarray) -> np.ndarray:
    shifted = np.exp(values - np.max(values))
    return shifted / np.sum(shifted)


def predict(model: str | Path, images: Sequence[str | Path], *, top_k: int = 5) -> list[dict]:
    """Run an exported model on photos and return the top-k labels with scores per photo.

    Each photo is decoded, centre-cropped and resized exactly as the manifest's input contract
    says, quantized with the model's own input scale and zero point, and the output is
    dequantized; logits become probabilities through a softmax.

    Returns:
        One dict per photo: ``{"image": path, "top": [{"index", "label", "score"}, ...],
        "saturated": bool}``; saturated means the top output hit the largest value a quantized
        output can hold, so the top classes may tie.
    """
    from mobile_export.data import load_rgb, read_labels
    from mobile_export.runtime.litert import LiteRTModel

    from mobile_export.data import list_images

    model_file, manifest = locate_export(model)
    input_contract = InputContract.from_dict(manifest["input"])
    images = [found for image in images for found in (list_images(image) if Path(image).is_dir() else [image])]
    labels = read_labels(model_file.parent / manifest["labels"]["file"])
    runner = LiteRTModel(model_file)

    results = []
    for image in images:
        pixels = input_contract.prepare(load_rgb(image))
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
