"""The input contract: resize size, centre crop and the integer triangle filter."""

from fractions import Fraction

import numpy as np
import pytest
from PIL import Image

from mobile_export.contract import InputContract


def _slow_prepare(rgb: np.ndarray, height: int, width: int, fraction: Fraction) -> np.ndarray:
    """The contract's docstring, followed pixel by pixel in plain Python integers."""
    photo_h, photo_w = rgb.shape[:2]
    num, den = fraction.numerator, fraction.denominator

    def round_div(a, b):
        return (2 * a + b) // (2 * b)

    if photo_w * height >= photo_h * width:
        resized_h = round_div(height * den, num)
        resized_w = max(width, round_div(photo_w * resized_h, photo_h))
    else:
        resized_w = round_div(width * den, num)
        resized_h = max(height, round_div(photo_h * resized_w, photo_w))
    top, left = (resized_h - height) // 2, (resized_w - width) // 2

    def weights(source, resized, position):
        support = 2 * max(source, resized)
        return [max(0, support - abs((2 * j + 1) * resized - (2 * position + 1) * source)) for j in range(source)]

    out = np.zeros((height, width, 3), dtype=np.uint8)
    for i in range(height):
        wy = weights(photo_h, resized_h, i + top)
        for k in range(width):
            wx = weights(photo_w, resized_w, k + left)
            denominator = sum(wy) * sum(wx)
            for c in range(3):
                total = sum(
                    wy[y] * wx[x] * int(rgb[y, x, c])
                    for y in range(photo_h)
                    if wy[y]
                    for x in range(photo_w)
                    if wx[x]
                )
                out[i, k, c] = (total + denominator // 2) // denominator
    return out


@pytest.mark.parametrize(
    ("photo_shape", "target"),
    [
        ((37, 53), (16, 16)),  # shrink, landscape
        ((53, 37), (16, 16)),  # shrink, portrait
        ((9, 13), (16, 16)),  # enlarge
        ((40, 40), (12, 20)),  # non-square target
        ((16, 16), (14, 14)),  # close to identity
    ],
)
def test_prepare_matches_slow_reference(photo_shape, target):
    rng = np.random.default_rng(sum(photo_shape) + sum(target))
    rgb = rng.integers(0, 256, (*photo_shape, 3), dtype=np.uint8)
    # The contract requires at least 32 pixels; build one and shrink its size to test small cases.
    contract = InputContract(height=32, width=32)
    object.__setattr__(contract, "height", target[0])
    object.__setattr__(contract, "width", target[1])

    fast = contract.prepare(rgb)
    slow = _slow_prepare(rgb, target[0], target[1], contract.crop_fraction)

    np.testing.assert_array_equal(fast, slow)


@pytest.mark.parametrize(
    ("photo", "target", "expected"),
    [
        ((427, 640), (224, 224), (256, 384)),  # rocket.jpg: 640 * 256 / 427 = 383.7 rounds to 384
        ((300, 451), (224, 224), (256, 385)),  # chelsea.png: 384.9
        ((640, 427), (224, 224), (384, 256)),  # portrait
        ((512, 512), (224, 224), (256, 256)),
        ((512, 512), (160, 224), (256, 256)),  # wider model: width 224 -> 256 drives the scale
        ((300, 900), (160, 224), (183, 549)),  # 160 * 8 / 7 = 182.9 rounds to 183
    ],
)
def test_resized_size(photo, target, expected):
    contract = InputContract(height=target[0], width=target[1])

    assert contract.resized_size(*photo) == expected


def test_resized_size_covers_the_model_input():
    contract = InputContract(height=160, width=224)
    for photo in [(100, 1000), (1000, 100), (161, 225), (224, 160), (33, 47)]:
        resized_h, resized_w = contract.resized_size(*photo)
        assert resized_h >= 160
        assert resized_w >= 224


@pytest.mark.parametrize("photo_shape", [(300, 451), (451, 300), (224, 224), (50, 70)])
def test_constant_image_stays_constant(photo_shape):
    rgb = np.full((*photo_shape, 3), (17, 128, 250), dtype=np.uint8)

    out = InputContract(height=224, width=224).prepare(rgb)

    assert out.shape == (224, 224, 3)
    np.testing.assert_array_equal(out, np.broadcast_to(np.array([17, 128, 250], np.uint8), out.shape))


def test_horizontal_ramp_stays_monotonic():
    ramp = np.tile(np.linspace(0, 255, 500).astype(np.uint8)[None, :, None], (300, 1, 3))

    out = InputContract(height=64, width=64).prepare(ramp)

    assert np.all(np.diff(out[:, :, 0].astype(int), axis=1) >= 0)
    assert out[0, 0, 0] > 0  # the centre crop drops the darkest columns
    assert out[0, -1, 0] < 255


def test_non_square_target_shape():
    rgb = np.zeros((480, 640, 3), dtype=np.uint8)

    assert InputContract(height=160, width=224).prepare(rgb).shape == (160, 224, 3)


def test_shrinking_averages_fine_detail():
    # A one-pixel checkerboard must average to grey when shrunk 4x; a filter that only samples
    # two neighbours (bilinear without widening) would alias to near black or white.
    board = ((np.indices((1024, 1024)).sum(axis=0) % 2) * 255).astype(np.uint8)
    rgb = np.repeat(board[:, :, None], 3, axis=2)

    out = InputContract(height=224, width=224).prepare(rgb)

    assert out.min() >= 120
    assert out.max() <= 135


def test_close_to_pillow_bilinear():
    rng = np.random.default_rng(3)
    smooth = rng.integers(0, 256, (30, 45, 3)).astype(np.uint8)
    photo = np.asarray(Image.fromarray(smooth).resize((451, 300), Image.BICUBIC))
    contract = InputContract(height=224, width=224)
    resized_h, resized_w = contract.resized_size(300, 451)
    top, left = (resized_h - 224) // 2, (resized_w - 224) // 2

    pillow = np.asarray(Image.fromarray(photo).resize((resized_w, resized_h), Image.BILINEAR))
    pillow = pillow[top : top + 224, left : left + 224].astype(int)
    ours = contract.prepare(photo).astype(int)

    # Pillow rounds between its passes and uses 22-bit fixed-point weights; we round once.
    assert np.abs(ours - pillow).max() <= 1


def test_to_dict_round_trip():
    contract = InputContract(height=160, width=224, crop_fraction=Fraction(7, 8))

    restored = InputContract.from_dict(contract.to_dict())

    assert restored == contract
    assert contract.to_dict()["shape"] == [1, 160, 224, 3]
    assert contract.to_dict()["value_range"] == [0, 255]


def test_rejects_non_uint8_input():
    with pytest.raises(ValueError, match="uint8"):
        InputContract(height=224, width=224).prepare(np.zeros((10, 10, 3), dtype=np.float32))


def test_rejects_too_small_size():
    with pytest.raises(ValueError, match="at least 32"):
        InputContract(height=16, width=224)
