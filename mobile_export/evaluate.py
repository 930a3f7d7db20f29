"""Accuracy on a labelled folder: the float model and every export of one build, side by side.

Parity says whether an export agrees with the float model; accuracy says whether either is right.
The data folder has one subfolder per class, named by the class's label (as in labels.txt, case
and underscores ignored) or by its index.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np

from mobile_export.contract import InputContract


class EvaluationError(ValueError):
    """The build folder or the labelled data cannot be evaluated; the message names the fix."""


def _key(name: str) -> str:
    return re.sub(r"[\s_]+", " ", name).strip().lower()


def class_folders(data: Path, labels: list[str]) -> dict[Path, int]:
    """Map each class subfolder of ``data`` to a label index."""
    if not data.is_dir():
        raise EvaluationError(f"Data folder {data} does not exist; pass a folder with one subfolder per class.")
    by_name = {}
    for index, label in enumerate(labels):
        by_name.setdefault(_key(label), index)
    folders = {}
    unknown = []
    for folder in sorted(p for p in data.iterdir() if p.is_dir() and not p.name.startswith(".")):
        if folder.name.isdigit() and int(folder.name) < len(labels):
            folders[folder] = int(folder.name)
        elif _key(folder.name) in by_name:
            folders[folder] = by_name[_key(folder.name)]
        else:
            unknown.append(folder.name)
    if unknown:
        raise EvaluationError(
            f"Class folders {', '.join(unknown[:3])} in {data} match no label; name each folder after a line of "
            "labels.txt or after its index."
        )
    if not folders:
        raise EvaluationError(f"{data} has no class subfolders; put each class's photos in a folder named after it.")
    return folders


def evaluate(out: str | Path, data: str | Path, *, limit_per_class: int | None = None) -> dict:
    """Return top-1 and top-5 accuracy of the float model and of every export in ``out``.

    Returns:
        ``{"images": n, "classes": k, "models": {"float": {"top1", "top5"}, "tflite-int8": {...}}}``.
    """
    from mobile_export._tf import import_tensorflow
    from mobile_export.data import list_images, load_rgb, read_labels
    from mobile_export.predict import locate_export, open_runner

    out = Path(out)
    summary_path = out / "summary.json"
    if not summary_path.is_file():
        raise EvaluationError(f"{out} has no summary.json; pass an OUT folder written by `mobile-export build`.")
    try:
        summary = json.loads(summary_path.read_text(encoding="utf-8"))
        exports = [out / row["export"] for row in summary["exports"]]
    except (json.JSONDecodeError, KeyError, TypeError) as error:
        raise EvaluationError(f"{summary_path} is damaged ({type(error).__name__}: {error}); rebuild OUT.") from None
    float_path = out / summary.get("float_model", "float_model.keras")
    if not float_path.is_file():
        raise EvaluationError(f"{out} has no {float_path.name}; it was written by an older mobile-export, so rebuild it.")
    located = [locate_export(folder) for folder in exports]
    first_file, first_manifest = located[0]
    labels = read_labels(first_file.parent / first_manifest["labels"]["file"])
    contract = InputContract.from_dict(first_manifest["input"])

    import_tensorflow()
    import keras

    float_model = keras.models.load_model(float_path, safe_mode=True, compile=False)
    runners = {folder.name: open_runner(model_file, manifest) for folder, (model_file, manifest) in zip(exports, located)}

    folders = class_folders(Path(data), labels)
    hits = {name: [0, 0] for name in ["float", *runners]}
    count = 0
    for folder, truth in folders.items():
        paths = list_images(folder)[:limit_per_class]
        for path in paths:
            pixels = contract.prepare(load_rgb(path))
            outputs = {"float": np.asarray(float_model(pixels[None].astype(np.float32), training=False))[0]}
            outputs |= {name: runner.run(pixels) for name, runner in runners.items()}
            for name, output in outputs.items():
                top5 = np.argsort(-output, kind="stable")[:5]
                hits[name][0] += int(top5[0] == truth)
                hits[name][1] += int(truth in top5)
            count += 1
    if count == 0:
        raise EvaluationError(f"The class folders in {data} contain no images.")
    return {
        "images": count,
        "classes": len(folders),
        "models": {name: {"top1": top1 / count, "top5": top5 / count} for name, (top1, top5) in hits.items()},
    }
