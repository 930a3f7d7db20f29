"""Read photos from disk as 8-bit RGB arrays, one file or a whole folder at a time.

Pillow's pixel formats become ``HxWx3`` uint8 RGB, the form that
:meth:`mobile_export.contract.InputContract.prepare` takes, as follows:

* Grey (``L``, ``1``) is copied into all three channels.
* Alpha is dropped, and each pixel keeps the colour stored under it, because phone
  camera frames are opaque and apps read the RGB channels without the alpha. This
  applies to ``LA``, ``RGBA``, palette images with transparency and premultiplied modes.
* 16-bit grey (``I;16``, ``I;16B``, ``I;16L``, ``I;16N``, and ``I`` holding 0..65535) keeps its
  high byte (``value >> 8``). Pillow's own conversion to ``L`` clips at 255 instead,
  which would turn every mid-grey white. Pillow 13 decodes 16-bit RGB and RGBA PNGs to
  8 bits by the high byte too, so grey and colour 16-bit files agree.
* CMYK, YCbCr, LAB and other modes go through Pillow's ``convert("RGB")``.
  Embedded ICC profiles are not applied.
* 32-bit float (``F``) and 32-bit integer pixels outside 0..65535 have no agreed 0..255
  scale, so they raise :class:`ImageError`.

EXIF orientation is applied first, so the array is upright as a photo viewer shows it.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import struct
from collections.abc import Callable
from importlib import resources
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from mobile_export.contract import InputContract

# One logger for the whole package, named for the package rather than this module.
_LOGGER = logging.getLogger("mobile_export.data")

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff"})
BUNDLED_SPLITS = ("calibration", "validation")

_SIXTEEN_BIT_GREY_MODES = frozenset({"I;16", "I;16B", "I;16L", "I;16N", "I"})
# Converting these straight to RGB either warns (palette with byte transparency) or
# is unsupported (La), so they first become plain straight-alpha images.
_STRAIGHT_ALPHA_MODES = {"P": "RGBA", "PA": "RGBA", "La": "LA", "RGBa": "RGBA"}
_MAX_SKIPPED_NAMES_IN_WARNING = 3
_FOLDER_HINT = "pass a folder of JPEG or PNG photos"


class ImageError(ValueError):
    """An image file that cannot be decoded, or whose pixels have no 8-bit RGB form."""

    def __init__(self, path: str | os.PathLike, reason: str) -> None:
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"Failed to read image {self.path}: {reason}.")

    def __reduce__(self):
        # Rebuild from the constructor arguments, so the error survives process pools.
        return type(self), (self.path, self.reason)


class ImageFolderError(ValueError):
    """A folder of images that is missing, not a folder, or has no readable image."""

    def __init__(self, folder: str | os.PathLike, message: str) -> None:
        self.folder = Path(folder)
        super().__init__(message)

    def __reduce__(self):
        return type(self), (self.folder, str(self))


@dataclasses.dataclass(frozen=True)
class LoadedImages:
    """Model inputs read from a folder, with the files they came from and those skipped."""

    pixels: np.ndarray
    """``N x height x width x 3`` uint8, already passed through ``contract.prepare``."""
    paths: list[Path]
    """The file of each row of ``pixels``, in the same order."""
    skipped: list[tuple[Path, str]]
    """Each file that could not be read, with the reason."""


def load_rgb(path: str | os.PathLike) -> np.ndarray:
    """Decode an image file into an upright ``HxWx3`` uint8 RGB array.

    Raises :class:`ImageError` for a missing, unreadable or corrupt file, for an image
    larger than twice ``PIL.Image.MAX_IMAGE_PIXELS`` (Pillow's decompression bomb
    limit), and for pixel formats listed in the module docstring as rejected.
    """
    path = Path(path)
    if not path.is_file():
        reason = "no such file" if not path.exists() else "not a regular file"
        raise ImageError(path, reason)

    try:
        with Image.open(path) as image:
            image.load()
            upright = ImageOps.exif_transpose(image)
    except Image.DecompressionBombError as error:
        raise ImageError(path, f"{error} Raise PIL.Image.MAX_IMAGE_PIXELS if you trust the file") from error
    except UnidentifiedImageError as error:
        raise ImageError(path, "not an image format Pillow can decode") from error
    except OSError as error:
        # An OSError with an errno comes from the file system, one without comes from the decoder.
        if error.errno is not None:
            raise ImageError(path, error.strerror or str(error)) from error
        raise ImageError(path, f"corrupt or truncated file ({error})") from error
    except (SyntaxError, ValueError, EOFError, struct.error) as error:
        raise ImageError(path, f"corrupt file ({type(error).__name__}: {error})") from error

    return _to_rgb(upright, path)


def _to_rgb(image: Image.Image, path: Path) -> np.ndarray:
    mode = image.mode
    if mode in _SIXTEEN_BIT_GREY_MODES:
        return _sixteen_bit_grey_to_rgb(image, path)
    if mode == "F":
        raise ImageError(
            path,
            "32-bit floating-point pixels (Pillow mode F) have no agreed 0..255 scale; "
            "save the image as an 8-bit PNG or JPEG",
        )

    try:
        if mode in _STRAIGHT_ALPHA_MODES:
            image = image.convert(_STRAIGHT_ALPHA_MODES[mode])
        rgb = image.convert("RGB")
    except ValueError as error:
        raise ImageError(path, f"Pillow cannot convert pixel mode {mode} to RGB ({error})") from error
    return np.array(rgb, dtype=np.uint8)


def _sixteen_bit_grey_to_rgb(image: Image.Image, path: Path) -> np.ndarray:
    values = np.array(image)
    if image.mode == "I":
        low, high = int(values.min()), int(values.max())
        if low < 0 or high > 65535:
            raise ImageError(
                path,
                f"32-bit integer pixels range over {low}..{high}, outside the 16-bit range "
                "0..65535 that has an agreed 8-bit scale; save the image as an 8-bit PNG or JPEG",
            )
    grey = (values.astype(np.uint32) >> 8).astype(np.uint8)
    return np.repeat(grey[:, :, np.newaxis], 3, axis=2)


def list_images(folder: str | os.PathLike) -> list[Path]:
    """Return the image files under ``folder`` and its subfolders, sorted by path.

    A file counts as an image by its suffix (``IMAGE_SUFFIXES``, in any case). Hidden
    files and everything inside hidden folders are left out. Raises
    :class:`ImageFolderError` when ``folder`` is missing or is not a folder, but returns
    an empty list for a folder without images.
    """
    folder = _existing_folder(folder)
    images = []
    for root, folder_names, file_names in os.walk(folder):
        folder_names[:] = [name for name in folder_names if not name.startswith(".")]
        for name in file_names:
            if name.startswith(".") or Path(name).suffix.lower() not in IMAGE_SUFFIXES:
                continue
            path = Path(root, name)
            if path.is_file():
                images.append(path)
    return sorted(images)


def load_folder(
    folder: str | os.PathLike,
    contract: InputContract,
    *,
    limit: int | None = None,
    progress: Callable[[int, int], object] | None = None,
) -> LoadedImages:
    """Read the images under ``folder`` and prepare each one as model input.

    Files come in :func:`list_images` order. With ``limit``, at most that many files are
    read, spread evenly over the sorted list, so that every class folder of an
    ImageNet-style tree is sampled rather than only the first ones. ``progress(done,
    total)`` is called after each file, with ``total`` the number of files to read.

    A file that cannot be read is skipped and listed in ``skipped``, and one warning on
    the ``mobile_export.data`` logger counts these files. Raises
    :class:`ImageFolderError` when the folder is missing, has no image files, or has
    no readable one.
    """
    if limit is not None and limit < 1:
        raise ValueError(f"limit must be a positive number of images, got {limit}.")

    folder = Path(folder)
    candidates = list_images(folder)
    if not candidates:
        raise ImageFolderError(folder, _no_images_message(folder))
    if limit is not None and limit < len(candidates):
        candidates = [candidates[index * len(candidates) // limit] for index in range(limit)]

    pixels = np.empty((len(candidates), contract.height, contract.width, 3), dtype=np.uint8)
    paths: list[Path] = []
    skipped: list[tuple[Path, str]] = []
    for done, path in enumerate(candidates, start=1):
        try:
            rgb = load_rgb(path)
        except ImageError as error:
            skipped.append((path, error.reason))
        else:
            pixels[len(paths)] = contract.prepare(rgb)
            paths.append(path)
        if progress is not None:
            progress(done, len(candidates))

    if not paths:
        first_path, first_reason = skipped[0]
        raise ImageFolderError(
            folder,
            f"Folder {folder} contains no readable image: all {len(skipped)} image files "
            f"failed to decode, the first being {first_path.name} ({first_reason}); {_FOLDER_HINT}.",
        )
    if skipped:
        _warn_skipped(folder, skipped, len(candidates))
        pixels = pixels[: len(paths)].copy()

    return LoadedImages(pixels=pixels, paths=paths, skipped=skipped)


def _existing_folder(folder: str | os.PathLike) -> Path:
    folder = Path(folder)
    if not folder.exists():
        raise ImageFolderError(folder, f"Image folder {folder} does not exist; {_FOLDER_HINT}.")
    if not folder.is_dir():
        raise ImageFolderError(folder, f"{folder} is a file, not a folder; {_FOLDER_HINT}.")
    return folder


def _no_images_message(folder: Path) -> str:
    suffixes = ", ".join(sorted(IMAGE_SUFFIXES))
    others = sorted(
        path.relative_to(folder)
        for path in folder.rglob("*")
        if path.is_file() and not any(part.startswith(".") for part in path.relative_to(folder).parts)
    )
    found = "it is empty" if not others else f"it has {len(others)} other files, such as {others[0]}"
    return f"Folder {folder} contains no image files with suffix {suffixes} ({found}); {_FOLDER_HINT}."


def _warn_skipped(folder: Path, skipped: list[tuple[Path, str]], total: int) -> None:
    skipped_names = "; ".join(
        f"{path.relative_to(folder)} ({reason})" for path, reason in skipped[:_MAX_SKIPPED_NAMES_IN_WARNING]
    )
    more = len(skipped) - _MAX_SKIPPED_NAMES_IN_WARNING
    if more > 0:
        skipped_names += f"; and {more} more"
    _LOGGER.warning(
        "Skipped %d of %d image files in %s that could not be read: %s",
        len(skipped),
        total,
        folder,
        skipped_names,
    )


def bundled_photos(split: str) -> Path:
    """Return the folder of real photos shipped with the package for ``split``.

    ``"calibration"`` photos feed quantization and ``"validation"`` photos, held out
    from calibration, check the converted model. Their sources and licences are in
    ``mobile_export/data/photos/LICENSE.txt``.
    """
    if split not in BUNDLED_SPLITS:
        raise ValueError(f"Unknown bundled photo split {split!r}; expected one of {', '.join(BUNDLED_SPLITS)}.")

    folder = resources.files("mobile_export.data") / "photos" / split
    if not isinstance(folder, Path):
        # NOTE: a package imported from a zip archive has no folder to hand to Pillow.
        raise RuntimeError(
            f"mobile_export is imported from an archive ({folder}), so the bundled photos "
            "have no folder on disk; install mobile-export unpacked, as pip does."
        )
    if not folder.is_dir():
        raise FileNotFoundError(
            f"Bundled {split} photos are missing: {folder} does not exist; reinstall mobile-export."
        )
    return folder
