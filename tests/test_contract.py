"""The input contract's crop, box prefilter and fixed-point bilinear resize."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from mobile_export.contract import InputContract, _bilinear_resize, _box_reduce


def taps_from_docstring(source: int, target: int, index: int) -> tuple[int, int, int, int]:
    """Return ``(x0, x1, w0, w1)`` for one output index, written from the contract docstring."""
    n = max((2 * index + 1) * source - target, 0)
    x0 = min(n // (2 * target), source - 1)
    w1 = n % (2 * target) if x0 < source - 1 else 0
    w0 = 2 * target - w1
    x1 = min(x0 + 1, source - 1)
    return x0, x1, w0, w1


def slow_bilinear_resize(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """Resize pixel by pixel with Python integers, as the contract docstring describes."""
    source_height, source_width, channels = image.shape
    denominator = (2 * height) * (2 * width)
    output = np.zeros((height, width, channels), dtype=np.uint8)
    for row in range(height):
        y0, y1, wy0, wy1 = taps_from_docstring(source_height, height, row)
        for col in range(width):
            x0, x1, wx0, wx1 = taps_from_docstring(source_width, width, col)
            for channel in range(channels):
                total = (
                    int(image[y0, x0, channel]) * wy0 * wx0
                    + int(image[y0, x1, channel]) * wy0 * wx1
                    + int(image[y1, x0, channel]) * wy1 * wx0
                    + int(image[y1, x1, channel]) * wy1 * wx1
                )
                output[row, col, channel] = (total + denominator // 2) // denominator
    return output


def test_crop_box_for_451x300_photo():
    contract = InputContract(height=224, width=224)

    # k = min(451 * 224, 300 * 224) = 67200
    # crop_w = crop_h = floor(67200 * 7 / (8 * 224)) = floor(262.5) = 262
    # top = (300 - 262) // 2 = 19, left = (451 - 262) // 2 = 94
    assert contract.crop_box(300, 451) == (19, 94, 262, 262)


def test_crop_box_non_square_target():
    contract = InputContract(height=160, width=224)

    # k = min(451 * 160, 300 * 224) = min(72160, 67200) = 67200
    # crop_w = floor(67200 * 7 / (8 * 160)) = floor(367.5) = 367
    # crop_h = floor(67200 * 7 / (8 * 224)) = floor(262.5) = 262
    # top = (300 - 262) // 2 = 19, left = (451 - 367) // 2 = 42
    assert contract.crop_box(300, 451) == (19, 42, 262, 367)


def test_crop_box_portrait_photo():
    contract = InputContract(height=224, width=224)

    # k = min(300 * 224, 451 * 224) = 67200, so the crop is 262x262 again, now
    # centred vertically: top = (451 - 262) // 2 = 94, left = (300 - 262) // 2 = 19.
    assert contract.crop_box(451, 300) == (94, 19, 262, 262)


def test_prepare_non_square_target_shape():
    contract = InputContract(height=160, width=224)
    photo = np.random.default_rng(1).integers(0, 256, size=(300, 451, 3), dtype=np.uint8)

    prepared = contract.prepare(photo)

    assert prepared.shape == (160, 224, 3)
    assert prepared.dtype == np.uint8
    top, left, crop_h, crop_w = contract.crop_box(300, 451)
    np.testing.assert_array_equal(prepared, _bilinear_resize(photo[top : top + crop_h, left : left + crop_w], 160, 224))


@pytest.mark.parametrize("photo_shape", [(300, 451), (1000, 1000), (50, 40)])
def test_prepare_constant_image_stays_constant(photo_shape):
    contract = InputContract(height=224, width=224)
    photo = np.empty((*photo_shape, 3), dtype=np.uint8)
    photo[:, :] = (77, 0, 255)

    prepared = contract.prepare(photo)

    assert prepared.shape == (224, 224, 3)
    assert (prepared == (77, 0, 255)).all()


def test_prepare_horizontal_ramp_stays_monotonic():
    contract = InputContract(height=224, width=224)
    ramp = (np.arange(451) * 255 // 450).astype(np.uint8)
    photo = np.repeat(np.repeat(ramp[np.newaxis, :, np.newaxis], 300, axis=0), 3, axis=2)

    prepared = contract.prepare(photo)

    row = prepared[0, :, 0].astype(int)
    assert (np.diff(row) >= 0).all()
    assert row[-1] - row[0] > 100
    assert (prepared == prepared[:1]).all(), "every row should equal the first"
    assert (prepared == prepared[:, :, :1]).all(), "every channel should equal the first"


def test_box_prefilter_factor_3_for_1000px_photo():
    contract = InputContract(height=224, width=224)
    # A one-pixel checkerboard: the worst case for aliasing.
    rows, cols = np.indices((1000, 1000))
    photo = np.repeat((((rows + cols) % 2) * 255).astype(np.uint8)[:, :, np.newaxis], 3, axis=2)

    # k = 224000, crop = floor(224000 * 7 / (8 * 224)) = 875, factor = 875 // 224 = 3
    top, left, crop_h, crop_w = contract.crop_box(1000, 1000)
    assert (top, left, crop_h, crop_w) == (62, 62, 875, 875)
    crop = photo[top : top + crop_h, left : left + crop_w]

    prepared = contract.prepare(photo)

    np.testing.assert_array_equal(prepared, _bilinear_resize(_box_reduce(crop, 3), 224, 224))
    # A 3x3 block of the checkerboard has 4 or 5 white pixels: means 113 and 142 after
    # rounding, and bilinear weights stay between them.
    assert prepared.min() >= 113
    assert prepared.max() <= 142
    # Without the prefilter, the same resize lets the checkerboard alias through.
    unfiltered = _bilinear_resize(crop, 224, 224)
    assert unfiltered.max() - unfiltered.min() > 100


def test_box_reduce_rounds_half_up():
    blocks = np.array(
        [
            [0, 1, 0, 0, 0, 0],
            [1, 1, 1, 1, 0, 1],
            [9, 9, 9, 9, 9, 9],
        ],
        dtype=np.uint8,
    )
    image = np.repeat(blocks[:, :, np.newaxis], 3, axis=2)

    reduced = _box_reduce(image, 2)

    # Block means 3/4, 2/4 and 1/4 round to 1, 1 (half up) and 0; the odd last row is dropped.
    assert reduced[:, :, 0].tolist() == [[1, 1, 0]]


def test_prepare_no_prefilter_below_factor_2():
    contract = InputContract(height=224, width=224)
    photo = np.random.default_rng(2).integers(0, 256, size=(500, 500, 3), dtype=np.uint8)

    # crop = floor(500 * 224 * 7 / (8 * 224)) = 437, and 437 // 224 = 1: no prefilter.
    top, left, crop_h, crop_w = contract.crop_box(500, 500)
    assert (crop_h, crop_w) == (437, 437)

    prepared = contract.prepare(photo)

    np.testing.assert_array_equal(prepared, _bilinear_resize(photo[top : top + 437, left : left + 437], 224, 224))


def test_prepare_identity_when_crop_matches_target():
    photo = np.random.default_rng(3).integers(0, 256, size=(224, 224, 3), dtype=np.uint8)

    prepared = InputContract(height=224, width=224, crop_fraction=Fraction(1)).prepare(photo)

    np.testing.assert_array_equal(prepared, photo)


def test_prepare_256_photo_is_plain_centre_crop():
    photo = np.random.default_rng(4).integers(0, 256, size=(256, 256, 3), dtype=np.uint8)

    # The 7/8 crop of 256 is exactly 224, at offset 16: no resampling happens.
    prepared = InputContract(height=224, width=224).prepare(photo)

    np.testing.assert_array_equal(prepared, photo[16:240, 16:240])


@pytest.mark.parametrize(
    ("source_shape", "target_shape"),
    [((7, 11), (5, 13)), ((13, 5), (4, 4)), ((1, 6), (3, 2)), ((9, 9), (9, 9)), ((4, 17), (32, 3))],
)
def test_bilinear_resize_matches_slow_loop(source_shape, target_shape):
    image = np.random.default_rng(5).integers(0, 256, size=(*source_shape, 3), dtype=np.uint8)

    fast = _bilinear_resize(image, *target_shape)
    slow = slow_bilinear_resize(image, *target_shape)

    assert fast.dtype == np.uint8
    np.testing.assert_array_equal(fast, slow)


def test_prepare_rejects_non_uint8_input():
    with pytest.raises(ValueError, match="uint8"):
        InputContract(height=224, width=224).prepare(np.zeros((300, 300, 3), dtype=np.float32))
