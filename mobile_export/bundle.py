"""Put an export into the sample apps, where each app loads its model, labels and manifest.

Files are checked against the sha256 sums in the export's manifest, copied into a staging folder
beside the app's model folder, checked again, and swapped in with renames, so an app never contains
a mix of old and new files. An export that failed its parity gate is refused unless forced. A Core
ML model is an .mlpackage folder; it is copied whole and checked with
:func:`~mobile_export.convert.coreml.package_sha256`, which is a file's plain sha256 for files.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

from mobile_export.convert.coreml import package_sha256
from mobile_export.outputs import replace_folder
from mobile_export.predict import ExportFolderError, locate_export

# Each app's model folder, relative to the app's root folder.
ANDROID_MODEL_DIR = Path("app/src/main/assets/model")
IOS_MODEL_DIR = Path("MobileExportDemo/Model")
BUNDLED_FILES = ("manifest.json", "labels.txt", "golden.json")


class BundleError(ValueError):
    """The export cannot go into the app; the message names the fix."""


def choose_export(out: Path, export: str | None) -> Path:
    """Return the export folder to bundle: ``export`` inside ``out``, or its only export."""
    if (out / "manifest.json").is_file():
        return out
    summary = out / "summary.json"
    if not summary.is_file():
        raise BundleError(f"{out} is not an output of `mobile-export build` (no summary.json); pass its OUT folder.")
    names = [row["export"] for row in json.loads(summary.read_text(encoding="utf-8"))["exports"]]
    if export is not None:
        if export not in names:
            raise BundleError(f"{out} has no export {export!r}; it has {', '.join(names)}.")
        return out / export
    if len(names) != 1:
        raise BundleError(f"{out} contains several exports ({', '.join(names)}); choose one with --export.")
    return out / names[0]


def _verified_files(folder: Path, manifest: dict) -> list[Path]:
    files = [folder / manifest["model"]["file"], *(folder / name for name in BUNDLED_FILES)]
    for path in files:
        expected = manifest["files"].get(path.name) if path.name != "manifest.json" else None
        if not path.exists():
            raise BundleError(f"{path} is missing; rebuild the export.")
        if expected is not None and package_sha256(path) != expected:
            raise BundleError(f"{path} does not match the sha256 in its manifest; rebuild the export.")
    return files


def bundle(out: str | Path, *, android: str | Path | None = None, ios: str | Path | None = None,
           export: str | None = None, force: bool = False) -> list[Path]:
    """Copy one export into the Android app (and, for Core ML exports, the iOS app).

    Returns the model folders written. Raises :class:`BundleError` for a failed gate (unless
    ``force``), a checksum mismatch, a missing app folder, or an export the app cannot run.
    """
    if android is None and ios is None:
        raise BundleError("Nothing to do: pass --android APP_DIR and/or --ios APP_DIR.")
    folder = choose_export(Path(out), export)
    try:
        _, manifest = locate_export(folder)
    except ExportFolderError as error:
        raise BundleError(str(error)) from None
    if manifest.get("status") != "passed" and not force:
        raise BundleError(
            f"{folder.name} failed its parity gate (see {folder / 'parity.md'}); pass --force to bundle it anyway."
        )
    files = _verified_files(folder, manifest)

    targets = []
    if android is not None:
        if manifest["model"]["target"] != "tflite":
            raise BundleError(f"The Android app runs TFLite models; {folder.name} is a {manifest['model']['target']} export.")
        targets.append(_app_root(android, "settings.gradle.kts") / ANDROID_MODEL_DIR)
    if ios is not None:
        if manifest["model"]["target"] != "coreml":
            raise BundleError(
                f"The iOS app runs Core ML models; {folder.name} is a {manifest['model']['target']} export. "
                "Build one with --target coreml and bundle it with --export coreml-<mode>."
            )
        targets.append(_app_root(ios, "MobileExportDemo") / IOS_MODEL_DIR)

    for target in targets:
        _swap_in(files, target)
    return targets


def _app_root(path: str | Path, marker: str) -> Path:
    root = Path(path)
    if not (root / marker).exists():
        raise BundleError(f"{root} is not the sample app folder (no {marker} in it); pass the app's root folder.")
    return root


def _swap_in(files: list[Path], target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.partial-", dir=target.parent))
    try:
        for path in files:
            if path.is_dir():
                shutil.copytree(path, staging / path.name)
            else:
                shutil.copy2(path, staging / path.name)
            if package_sha256(staging / path.name) != package_sha256(path):
                raise BundleError(f"Copying {path.name} into {target} changed it; check the disk and retry.")
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    replace_folder(staging, target)
