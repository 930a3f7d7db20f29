"""Decoding photos into RGB arrays, and loading folders of them as model input."""

from __future__ import annotations

import logging
import pickle
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mobile_export.contract import InputContract
from mobile_export.data import (
    IMAGE_SUFFIXES,
    ImageError,
    ImageFolderError,
    bundled_photos,
    list_images,
    load_folder,
    load_rgb,
)

# JPEG is lossy: a flat 8-bit colour comes back within a few levels at quality 95.
JPEG_TOLERANCE = 6

RED, GREEN, BLUE, WHITE = (255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 255)
CONTRACT = InputContract(height=64, width=64)


def save_quadrants(path: Path, orientation: int | None) -> None:
    """Save a 64 wide, 32 high JPEG: red | green over blue | white, with an EXIF orientation."""
    pixels = np.zeros((32, 64, 3), dtype=np.uint8)
    pixels[:16, :32] = RED
    pixels[:16, 32:] = GREEN
    pixels[16:, :32] = BLUE
    pixels[16:, 32:] = WHITE
    exif = Image.Exif()
    if orientation is not None:
        exif[0x0112] = orientation
    Image.fromarray(pixels).save(path, quality=95, exif=exif)


def quadrant_centres(rgb: np.ndarray) -> list[tuple[int, ...]]:
    """Return the colours at the centres of the top-left, top-right, bottom-left and bottom-right quadrants."""
    height, width = rgb.shape[:2]
    rows, cols = (height // 4, 3 * height // 4), (width // 4, 3 * width // 4)
    return [tuple(int(v) for v in rgb[row, col]) for row in rows for col in cols]


def assert_colours_close(actual: list[tuple[int, ...]], expected: list[tuple[int, ...]]) -> None:
    difference = np.abs(np.array(actual, dtype=int) - np.array(expected, dtype=int))
    assert difference.max() <= JPEG_TOLERANCE, f"{actual} != {expected}"


def write_png_16bit(path: Path, values: np.ndarray, colour_type: int) -> None:
    """Write a 16-bit PNG by hand, since Pillow cannot save 16-bit RGB.

    ``colour_type`` is the PNG IHDR field: 0 grey, 2 RGB, 4 grey with alpha, 6 RGBA.
    """
    height, width = values.shape[:2]
    rows = b"".join(b"\x00" + values[row].astype(">u2").tobytes() for row in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 16, colour_type, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")
    )


def saved_mode(path: Path) -> str:
    with Image.open(path) as image:
        return image.mode


def save_photo(path: Path, colour: tuple[int, int, int] = (120, 60, 30)) -> None:
    Image.new("RGB", (80, 60), colour).save(path)


def write_truncated_jpeg(path: Path) -> None:
    noise = np.random.default_rng(0).integers(0, 256, size=(64, 64, 3), dtype=np.uint8)
    Image.fromarray(noise).save(path, quality=90)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


# EXIF orientation


def test_exif_orientation_6_rotates_clockwise(tmp_path):
    path = tmp_path / "rotated.jpg"
    save_quadrants(path, orientation=6)

    rgb = load_rgb(path)

    # Orientation 6 means "rotate 90 degrees clockwise to display": the stored
    # 64x32 image becomes 32 wide and 64 high, and the stored bottom-left (blue)
    # quadrant moves to the top left.
    assert rgb.shape == (64, 32, 3)
    assert_colours_close(quadrant_centres(rgb), [BLUE, RED, WHITE, GREEN])


def test_exif_orientation_3_rotates_half_turn(tmp_path):
    path = tmp_path / "upside_down.jpg"
    save_quadrants(path, orientation=3)

    rgb = load_rgb(path)

    assert rgb.shape == (32, 64, 3)
    assert_colours_close(quadrant_centres(rgb), [WHITE, BLUE, GREEN, RED])


def test_jpeg_without_orientation_unchanged(tmp_path):
    path = tmp_path / "upright.jpg"
    save_quadrants(path, orientation=None)

    rgb = load_rgb(path)

    assert rgb.shape == (32, 64, 3)
    assert rgb.dtype == np.uint8
    assert_colours_close(quadrant_centres(rgb), [RED, GREEN, BLUE, WHITE])


# Pixel modes


def test_grey_png_copied_to_three_channels(tmp_path):
    path = tmp_path / "grey.png"
    grey = np.array([[0, 17, 128, 255]], dtype=np.uint8)
    Image.fromarray(grey, mode="L").save(path)

    rgb = load_rgb(path)

    assert rgb.shape == (1, 4, 3)
    for channel in range(3):
        np.testing.assert_array_equal(rgb[:, :, channel], grey)


def test_grey_with_alpha_drops_alpha(tmp_path):
    path = tmp_path / "grey_alpha.png"
    Image.fromarray(np.array([[[100, 0], [200, 255]]], dtype=np.uint8), mode="LA").save(path)

    rgb = load_rgb(path)

    assert rgb.tolist() == [[[100, 100, 100], [200, 200, 200]]]


def test_rgba_keeps_colour_under_transparent_pixels(tmp_path):
    path = tmp_path / "rgba.png"
    rgba = np.array([[[10, 20, 30, 0], [40, 50, 60, 128], [70, 80, 90, 255]]], dtype=np.uint8)
    Image.fromarray(rgba, mode="RGBA").save(path)

    rgb = load_rgb(path)

    assert rgb.tolist() == [[[10, 20, 30], [40, 50, 60], [70, 80, 90]]]


@pytest.mark.parametrize("transparency", [0, bytes([0, 128])], ids=["index", "alpha-table"])
def test_palette_with_transparency_keeps_palette_colour(tmp_path, recwarn, transparency):
    path = tmp_path / "palette.png"
    image = Image.new("P", (2, 1))
    image.putpalette([255, 0, 0, 0, 255, 0])
    image.putpixel((1, 0), 1)
    image.save(path, transparency=transparency)
    assert saved_mode(path) == "P"

    rgb = load_rgb(path)

    assert rgb.tolist() == [[[255, 0, 0], [0, 255, 0]]]
    # Pillow warns when a palette with an alpha table goes straight to RGB.
    assert [str(warning.message) for warning in recwarn] == []


def test_one_bit_image_becomes_black_and_white(tmp_path):
    path = tmp_path / "bits.png"
    image = Image.new("1", (2, 1), 0)
    image.putpixel((1, 0), 1)
    image.save(path)

    rgb = load_rgb(path)

    assert rgb.tolist() == [[[0, 0, 0], [255, 255, 255]]]


def test_cmyk_jpeg_converted_to_rgb(tmp_path):
    path = tmp_path / "cmyk.jpg"
    cmyk = np.zeros((16, 32, 4), dtype=np.uint8)
    cmyk[:, :16] = (0, 255, 255, 0)  # full magenta and yellow: red
    cmyk[:, 16:] = (0, 0, 0, 128)  # half black: mid grey
    Image.fromarray(cmyk, mode="CMYK").save(path, quality=95)
    assert saved_mode(path) == "CMYK"

    rgb = load_rgb(path)

    assert rgb.shape == (16, 32, 3)
    assert_colours_close([tuple(rgb[8, 8]), tuple(rgb[8, 24])], [RED, (127, 127, 127)])


def test_ycbcr_image_converted_to_rgb(tmp_path):
    path = tmp_path / "ycbcr.tif"
    Image.new("YCbCr", (2, 2), (128, 128, 128)).save(path)
    assert saved_mode(path) == "YCbCr"

    rgb = load_rgb(path)

    assert rgb.tolist() == [[[128, 128, 128]] * 2] * 2


def test_lab_tiff_converted_to_rgb(tmp_path):
    path = tmp_path / "lab.tif"
    Image.new("LAB", (2, 1), (128, 128, 128)).save(path)
    assert saved_mode(path) == "LAB"

    rgb = load_rgb(path)

    # L* = 50 with a* = b* = 0 is the sRGB grey 119 in Pillow's conversion.
    assert rgb.tolist() == [[[119, 119, 119]] * 2]


def test_16bit_grey_png_keeps_high_byte(tmp_path):
    path = tmp_path / "grey16.png"
    values = np.array([[0, 255, 256, 32895, 32896, 65280, 65535]], dtype=np.uint16)
    Image.fromarray(values).save(path)
    assert saved_mode(path) == "I;16"

    rgb = load_rgb(path)

    # Pillow's own convert("L") turns every value above 255 into 255.
    assert rgb[0, :, 0].tolist() == [0, 0, 1, 128, 128, 255, 255]
    assert (rgb == rgb[:, :, :1]).all()


def test_16bit_grey_matches_16bit_rgb_png(tmp_path):
    # 255 tells the high byte (0) apart from rounding division by 257 (1).
    values = np.array([[0, 255, 256, 32896, 65535]], dtype=np.uint16)
    grey_path, rgb_path = tmp_path / "grey16.png", tmp_path / "rgb16.png"
    write_png_16bit(grey_path, values[:, :, np.newaxis], colour_type=0)
    write_png_16bit(rgb_path, np.repeat(values[:, :, np.newaxis], 3, axis=2), colour_type=2)

    grey = load_rgb(grey_path)
    colour = load_rgb(rgb_path)

    assert grey[0, :, 0].tolist() == [0, 0, 1, 128, 255]
    np.testing.assert_array_equal(grey, colour)


def test_16bit_rgba_png_drops_alpha(tmp_path):
    path = tmp_path / "rgba16.png"
    rgba = np.array([[[65535, 32896, 256, 0], [1, 2, 3, 65535]]], dtype=np.uint16)
    write_png_16bit(path, rgba, colour_type=6)

    rgb = load_rgb(path)

    assert rgb.tolist() == [[[255, 128, 1], [0, 0, 0]]]


def test_16bit_big_endian_tiff(tmp_path):
    path = tmp_path / "grey16b.tif"
    Image.frombytes("I;16B", (2, 1), np.array([[65535, 32896]], dtype=">u2").tobytes()).save(path)
    assert saved_mode(path) == "I;16B"

    rgb = load_rgb(path)

    assert rgb[0, :, 0].tolist() == [255, 128]


def test_32bit_integer_in_16bit_range_scaled(tmp_path):
    path = tmp_path / "int32.tif"
    Image.fromarray(np.array([[65535, 32896, 0]], dtype=np.int32)).save(path)
    assert saved_mode(path) == "I"

    rgb = load_rgb(path)

    assert rgb[0, :, 0].tolist() == [255, 128, 0]


def test_32bit_integer_out_of_range_rejected(tmp_path):
    path = tmp_path / "int32.tif"
    Image.fromarray(np.array([[70000, 5]], dtype=np.int32)).save(path)

    with pytest.raises(ImageError, match=r"5\.\.70000"):
        load_rgb(path)


def test_float_image_rejected(tmp_path):
    path = tmp_path / "float.tif"
    Image.fromarray(np.array([[0.5, 1.0]], dtype=np.float32)).save(path)

    with pytest.raises(ImageError, match="mode F") as caught:
        load_rgb(path)

    assert str(path) in str(caught.value)


@pytest.mark.parametrize("suffix", sorted(IMAGE_SUFFIXES))
def test_every_listed_suffix_decodes(tmp_path, suffix):
    path = tmp_path / f"photo{suffix}"
    save_photo(path, colour=(200, 100, 50))

    rgb = load_rgb(path)

    assert rgb.shape == (60, 80, 3)
    assert_colours_close([tuple(rgb[30, 40])], [(200, 100, 50)])


# Broken files


def test_text_file_named_jpg_raises(tmp_path):
    path = tmp_path / "notes.jpg"
    path.write_text("not a photo\n")

    with pytest.raises(ImageError) as caught:
        load_rgb(path)

    message = str(caught.value)
    assert str(path) in message
    assert "not an image format" in message
    assert "\n" not in message


def test_truncated_jpeg_raises(tmp_path):
    path = tmp_path / "cut.jpg"
    write_truncated_jpeg(path)

    with pytest.raises(ImageError, match="truncated") as caught:
        load_rgb(path)

    assert caught.value.path == path


def test_image_errors_survive_pickling(tmp_path):
    image_error = pickle.loads(pickle.dumps(ImageError(tmp_path / "a.jpg", "corrupt file")))
    folder_error = pickle.loads(pickle.dumps(ImageFolderError(tmp_path, "Folder is empty.")))

    assert image_error.path == tmp_path / "a.jpg"
    assert image_error.reason == "corrupt file"
    assert str(image_error) == f"Failed to read image {tmp_path / 'a.jpg'}: corrupt file."
    assert folder_error.folder == tmp_path
    assert str(folder_error) == "Folder is empty."


def test_missing_file_raises(tmp_path):
    with pytest.raises(ImageError, match="no such file"):
        load_rgb(tmp_path / "absent.png")


def test_decompression_bomb_rejected(tmp_path, monkeypatch):
    path = tmp_path / "big.png"
    Image.new("RGB", (100, 100)).save(path)
    # Pillow raises above twice the limit: 10,000 pixels against 2 * 1,000.
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)

    with pytest.raises(ImageError, match="decompression bomb") as caught:
        load_rgb(path)

    assert "MAX_IMAGE_PIXELS" in str(caught.value)


# Folder listing


def test_list_images_recursive_sorted_filtered(tmp_path):
    for relative in ["b/2.JPG", "b/1.png", "a/3.jpeg", "top.Png", "notes.txt", ".hidden.jpg", ".cache/x.jpg"]:
        path = tmp_path / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"")
    (tmp_path / "folder.jpg").mkdir()

    listed = [path.relative_to(tmp_path).as_posix() for path in list_images(tmp_path)]

    assert listed == ["a/3.jpeg", "b/1.png", "b/2.JPG", "top.Png"]


def test_list_images_missing_folder(tmp_path):
    with pytest.raises(ImageFolderError, match="does not exist"):
        list_images(tmp_path / "absent")


def test_list_images_file_instead_of_folder(tmp_path):
    path = tmp_path / "photo.png"
    save_photo(path)

    with pytest.raises(ImageFolderError, match="not a folder"):
        list_images(path)


# Folder loading


def test_load_folder_prepares_each_image(tmp_path):
    save_photo(tmp_path / "a.png", colour=(10, 20, 30))
    (tmp_path / "class_b").mkdir()
    save_photo(tmp_path / "class_b" / "b.png", colour=(40, 50, 60))

    loaded = load_folder(tmp_path, CONTRACT)

    assert loaded.pixels.shape == (2, 64, 64, 3)
    assert loaded.pixels.dtype == np.uint8
    assert loaded.paths == [tmp_path / "a.png", tmp_path / "class_b" / "b.png"]
    assert loaded.skipped == []
    assert (loaded.pixels[0] == (10, 20, 30)).all()
    assert (loaded.pixels[1] == (40, 50, 60)).all()


def test_load_folder_skips_broken_files_with_one_warning(tmp_path, caplog):
    save_photo(tmp_path / "good.png")
    (tmp_path / "notes.jpg").write_text("not a photo\n")
    write_truncated_jpeg(tmp_path / "cut.jpg")

    with caplog.at_level(logging.WARNING, logger="mobile_export.data"):
        loaded = load_folder(tmp_path, CONTRACT)

    assert loaded.pixels.shape == (1, 64, 64, 3)
    assert loaded.paths == [tmp_path / "good.png"]
    assert [path.name for path, _ in loaded.skipped] == ["cut.jpg", "notes.jpg"]
    assert "truncated" in loaded.skipped[0][1]

    warnings = [record for record in caplog.records if record.name == "mobile_export.data"]
    assert len(warnings) == 1
    message = warnings[0].getMessage()
    assert message.startswith("Skipped 2 of 3 image files")
    assert "cut.jpg" in message
    assert "notes.jpg" in message


def test_load_folder_warning_names_first_three(tmp_path, caplog):
    save_photo(tmp_path / "good.png")
    for index in range(5):
        (tmp_path / f"broken{index}.jpg").write_text("x")

    with caplog.at_level(logging.WARNING, logger="mobile_export.data"):
        load_folder(tmp_path, CONTRACT)

    [record] = caplog.records
    message = record.getMessage()
    assert "Skipped 5 of 6" in message
    assert "broken2.jpg" in message
    assert "broken3.jpg" not in message
    assert "and 2 more" in message


def test_load_folder_reports_progress(tmp_path):
    for index in range(3):
        save_photo(tmp_path / f"{index}.png")
    (tmp_path / "3.jpg").write_text("x")
    calls = []

    load_folder(tmp_path, CONTRACT, progress=lambda done, total: calls.append((done, total)))

    assert calls == [(1, 4), (2, 4), (3, 4), (4, 4)]


def test_load_folder_limit_spreads_over_classes(tmp_path):
    for class_name in ["cat", "dog", "fox", "owl"]:
        (tmp_path / class_name).mkdir()
        for index in range(5):
            save_photo(tmp_path / class_name / f"{index}.png")

    loaded = load_folder(tmp_path, CONTRACT, limit=4)

    assert [path.parent.name for path in loaded.paths] == ["cat", "dog", "fox", "owl"]
    assert loaded.pixels.shape == (4, 64, 64, 3)


def test_load_folder_limit_above_count_reads_all(tmp_path):
    for index in range(3):
        save_photo(tmp_path / f"{index}.png")

    loaded = load_folder(tmp_path, CONTRACT, limit=10)

    assert len(loaded.paths) == 3


def test_load_folder_rejects_zero_limit(tmp_path):
    save_photo(tmp_path / "a.png")

    with pytest.raises(ValueError, match="got 0"):
        load_folder(tmp_path, CONTRACT, limit=0)


def test_load_folder_empty_folder(tmp_path):
    with pytest.raises(ImageFolderError, match="it is empty") as caught:
        load_folder(tmp_path, CONTRACT)

    message = str(caught.value)
    assert str(tmp_path) in message
    assert "JPEG or PNG photos" in message
    assert caught.value.folder == tmp_path


def test_load_folder_only_unsupported_files(tmp_path):
    (tmp_path / "IMG_0001.HEIC").write_bytes(b"\x00")
    (tmp_path / "IMG_0002.HEIC").write_bytes(b"\x00")

    with pytest.raises(ImageFolderError, match=r"2 other files, such as IMG_0001\.HEIC"):
        load_folder(tmp_path, CONTRACT)


def test_load_folder_only_corrupt_files(tmp_path, caplog):
    (tmp_path / "a.jpg").write_text("x")
    write_truncated_jpeg(tmp_path / "b.jpg")

    with pytest.raises(ImageFolderError, match="all 2 image files failed to decode") as caught:
        load_folder(tmp_path, CONTRACT)

    assert "a.jpg" in str(caught.value)
    assert "\n" not in str(caught.value)


def test_load_folder_missing_folder(tmp_path):
    with pytest.raises(ImageFolderError, match="does not exist"):
        load_folder(tmp_path / "absent", CONTRACT)


# Bundled photos


def test_bundled_validation_photos_load(caplog):
    contract = InputContract(height=224, width=224)

    with caplog.at_level(logging.WARNING, logger="mobile_export.data"):
        loaded = load_folder(bundled_photos("validation"), contract)

    assert loaded.pixels.shape == (13, 224, 224, 3)
    assert loaded.skipped == []
    assert caplog.records == []
    assert "chelsea.png" in [path.name for path in loaded.paths]


def test_bundled_calibration_photos_load():
    loaded = load_folder(bundled_photos("calibration"), InputContract(height=96, width=128))

    assert loaded.pixels.shape == (9, 96, 128, 3)
    assert loaded.skipped == []


def test_bundled_splits_share_no_file():
    calibration = {path.name for path in list_images(bundled_photos("calibration"))}
    validation = {path.name for path in list_images(bundled_photos("validation"))}

    assert len(calibration) == 9
    assert len(validation) == 13
    assert calibration.isdisjoint(validation)


def test_bundled_photos_licence_names_every_photo():
    photos = bundled_photos("validation").parent
    licence = (photos / "LICENSE.txt").read_text(encoding="utf-8")

    for split in ("calibration", "validation"):
        for path in list_images(photos / split):
            assert f"\n{path.name}\n" in licence, path.name


def test_bundled_photos_unknown_split():
    with pytest.raises(ValueError, match="'calibration', 'validation'|calibration, validation"):
        bundled_photos("training")
