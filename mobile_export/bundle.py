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
from collections.abc import Sequence
from pathlib import Path

from mobile_export.convert.coreml import package_sha256
from mobile_export.outputs import replace_folder
from mobile_export.predict import ExportFolderError, locate_export

# Each app's model folder, relative to the app's root folder.
ANDROID_MODEL_DIR = Path("app/src/main/assets/model")
IOS_MODEL_DIR = Path("MobileExportDemo/Model")
BUNDLED_FILES = ("manifest.json", "labels.txt", "golden.json")


def app_markers() -> dict[str, tuple[str, str, str]]:
    """Map each target to its app: the ``bundle`` option, the app's default folder, and the file
    or folder that marks the app's root."""
    return {
        "tflite": ("android", "android_demo", "settings.gradle.kts"),
        "coreml": ("ios", "ios_demo", "MobileExportDemo"),
    }


class BundleError(ValueError):
    """The export cannot go into the app; the message names the fix."""


def choose_export(out: Path, export: str | Sequence[str] | None, target: str) -> Path:
    """Return the ``target`` export to bundle: the one named in ``export``, or OUT's only one.

    ``out`` is a build's OUT folder or one export folder inside it. ``export`` names one export
    per app (``tflite-int8``, ``coreml-fp16``); names of the other target's exports are ignored.
    """
    if (out / "manifest.json").is_file():
        return out
    summary = out / "summary.json"
    if not summary.is_file():
        raise BundleError(f"{out} is not an output of `mobile-export build` (no summary.json); pass its OUT folder.")
    rows = json.loads(summary.read_text(encoding="utf-8"))["exports"]
    names = [row["export"] for row in rows]
    candidates = [name for name in names if name.split("-")[0] == target]
    requested = [export] if isinstance(export, str) else list(export or ())
    for name in requested:
        if name not in names:
            raise BundleError(f"{out} has no export {name!r}; it has {', '.join(names)}.")
    chosen = [name for name in requested if name in candidates]
    if len(chosen) > 1:
        raise BundleError(f"Several {target} exports chosen ({', '.join(chosen)}); an app takes one, so pass one of them.")
    if chosen:
        return out / chosen[0]
    if not candidates:
        raise BundleError(f"{out} has no {target} export (it has {', '.join(names)}); build one with --target {target}.")
    if len(candidates) > 1:
        raise BundleError(f"{out} contains several {target} exports ({', '.join(candidates)}); choose one with --export.")
    return out / candidates[0]


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
           export: str | Sequence[str] | None = None, force: bool = False) -> list[Path]:
    """Copy a TFLite export into the Android app and a Core ML export into the iOS app.

    Every check runs before any app changes: the chosen exports, their gates, their checksums and
    the app folders. Returns the model folders written. Raises :class:`BundleError` for a failed
    gate (unless ``force``), a checksum mismatch, a missing app folder, or an export the app
    cannot run.
    """
    if android is None and ios is None:
        raise BundleError("Nothing to do: pass --android APP_DIR and/or --ios APP_DIR.")
    requested = [export] if isinstance(export, str) else list(export or ())
    only = None
    if ios is None:
        only = "tflite"
    elif android is None:
        only = "coreml"
    if only is not None and requested and all(name.split("-")[0] != only for name in requested):
        platform, runs = ("Android", "TFLite") if only == "tflite" else ("iOS", "Core ML")
        raise BundleError(
            f"The {platform} app runs {runs} models; {', '.join(requested)} is not a {only} export. Build one with "
            f"--target {only} and bundle it with --export {only}-<mode>."
        )
    apps = {"android": android, "ios": ios}
    for name in requested:
        option = next((option for target, (option, _, _) in app_markers().items() if name.split("-")[0] == target), None)
        if option is not None and apps[option] is None:
            raise BundleError(f"--export {name} is for the {option} app, but --{option} is not given; add --{option} APP_DIR.")
    plans = []
    model_dirs = {"tflite": ANDROID_MODEL_DIR, "coreml": IOS_MODEL_DIR}
    for target, (option, _, marker) in app_markers().items():
        app, model_dir = apps[option], model_dirs[target]
        if app is None:
            continue
        folder = choose_export(Path(out), export, target)
        try:
            _, manifest = locate_export(folder)
        except ExportFolderError as error:
            raise BundleError(str(error)) from None
        if manifest["model"]["target"] != target:
            platform = "Android" if target == "tflite" else "iOS"
            raise BundleError(
                f"The {platform} app runs {'TFLite' if target == 'tflite' else 'Core ML'} models; {folder.name} is a "
                f"{manifest['model']['target']} export. Build one with --target {target} and bundle it with "
                f"--export {target}-<mode>."
            )
        if manifest.get("status") != "passed" and not force:
            raise BundleError(
                f"{folder.name} failed its parity gate (see {folder / 'parity.md'}); pass --force to bundle it anyway."
            )
        plans.append((_verified_files(folder, manifest), _app_root(app, marker) / model_dir))

    for files, target in plans:
        _swap_in(files, target)
    return [target for _, target in plans]


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
