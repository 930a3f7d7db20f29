"""The input contract: what every exported model takes, and how a photo becomes that input.

Every exported model takes one RGB image of shape ``[1, height, width, 3]`` (NHWC) with raw pixel
values in 0..255. Normalization (mean and std) is a layer inside the model, so neither the
calibration code, the validation code, ``predict`` nor a phone app ever normalizes pixels.

A photo becomes that input in two steps, the usual ImageNet evaluation (resize the shorter side to
``size / crop_fraction``, 256 for 224, then take the centre), written in integer arithmetic so that
Kotlin and Swift code reproduce it bit for bit. With a crop fraction ``num/den`` (7/8 by default),
a model input of ``height x width`` and a photo of ``photo_h x photo_w``:

1. **Resize size.** ``round(a / b)`` below means ``(2 * a + b) // (2 * b)``, rounding half up.
   If ``photo_w * height >= photo_h * width`` (the photo is at least as wide as the model input)::

       resized_h = round(height * den / num)     resized_w = max(width, round(photo_w * resized_h / photo_h))

   otherwise the same with the roles of height and width swapped.
2. **Centre crop** of the resized image: ``top = (resized_h - height) // 2``,
   ``left = (resized_w - width) // 2``. Only the cropped pixels are computed.
3. **Triangle filter** (bilinear, widened when shrinking so it averages every source pixel,
   like Pillow's ``BILINEAR``), separable. Along an axis of ``s`` source and ``t`` resized pixels,
   output pixel ``i`` at resized position ``p = i + offset`` takes source pixel ``j`` with weight::

       w(j) = max(0, 2 * max(s, t) - |(2 * j + 1) * t - (2 * p + 1) * s|)

   Weights are integers (pixel-centre distances in units of ``1 / (2 * t)``); taps outside the
   photo have no weight, and the weights are normalized by their sum. A pixel is
   ``(sum of wy(j) * wx(k) * pixel[j, k] + D // 2) // D`` with ``D = sum(wy) * sum(wx)``:
   one rounding, half up, and no floating point anywhere.

This is the filter of Pillow's ``BILINEAR`` resize, computed exactly: Pillow rounds between its two
passes, so it may differ from this by one level on a few pixels.
"""

from __future__ import annotations

import dataclasses
from fractions import Fraction

import numpy as np

SCHEMA_VERSION = 1
DEFAULT_CROP_FRACTION = Fraction(7, 8)
RESIZE_METHOD = "resize-shorter-side-then-centre-crop, triangle filter, integer arithmetic"


@dataclasses.dataclass(frozen=True)
class InputContract:
    """The input every exported model takes: an RGB uint8-range image of a fixed size."""

    height: int
    width: int
    crop_fraction: Fraction = DEFAULT_CROP_FRACTION

    def __post_init__(self) -> None:
        if self.height < 32 or self.width < 32:
            raise ValueError(
                f"Input size {self.height}x{self.width} is too small; MobileNets need at least 32x32."
            )
        if not 0 < self.crop_fraction <= 1:
            raise ValueError(f"Crop fraction {self.crop_fraction} must be in (0, 1].")

    @property
    def shape(self) -> tuple[int, int, int, int]:
        return (1, self.height, self.width, 3)

    def to_dict(self) -> dict:
        """Describe the contract for manifest.json; the apps read exactly these keys."""
        return {
            "layout": "NHWC",
            "shape": list(self.shape),
            "color": "RGB",
            "value_range": [0, 255],
            "normalization": "inside the model",
            "resize": {
                "method": RESIZE_METHOD,
                "shorter_side": "round(size * crop_fraction_denominator / crop_fraction_numerator), the other side keeps the "
                "photo's aspect, rounded half up",
                "crop_fraction": float(self.crop_fraction),
                "crop_fraction_numerator": self.crop_fraction.numerator,
                "crop_fraction_denominator": self.crop_fraction.denominator,
                "crop": "centre of the resized image: top = (resized_h - height) // 2, left = (resized_w - width) // 2",
                "filter": "triangle, support 2 * max(source, resized) in units of 1 / (2 * resized), "
                "weights normalized by their sum",
                "rounding": "one final integer division, half up",
            },
        }

    @classmethod
    def from_dict(cls, contract: dict) -> InputContract:
        _, height, width, _ = contract["shape"]
        resize = contract["resize"]
        fraction = Fraction(resize["crop_fraction_numerator"], resize["crop_fraction_denominator"])
        return cls(height=height, width=width, crop_fraction=fraction)

    def resized_size(self, photo_height: int, photo_width: int) -> tuple[int, int]:
        """Return ``(resized_h, resized_w)``: the photo's size before the centre crop."""
        num, den = self.crop_fraction.numerator, self.crop_fraction.denominator
        if photo_width * self.height >= photo_height * self.width:
            resized_h = _round_div(self.height * den, num)
            resized_w = max(self.width, _round_div(photo_width * resized_h, photo_height))
        else:
            resized_w = _round_div(self.width * den, num)
            resized_h = max(self.height, _round_div(photo_height * resized_w, photo_width))
        return resized_h, resized_w

    def prepare(self, rgb: np.ndarray) -> np.ndarray:
        """Turn an ``HxWx3`` uint8 RGB photo into the ``height x width x 3`` uint8 model input."""
        if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
            raise ValueError(f"Expected an HxWx3 uint8 RGB array, got {rgb.dtype} {rgb.shape}.")
        resized_h, resized_w = self.resized_size(rgb.shape[0], rgb.shape[1])
        rows = triangle_taps(rgb.shape[0], resized_h, self.height, (resized_h - self.height) // 2)
        cols = triangle_taps(rgb.shape[1], resized_w, self.width, (resized_w - self.width) // 2)
        return resample(rgb, rows, cols)


def _round_div(a: int, b: int) -> int:
    return (2 * a + b) // (2 * b)


def triangle_taps(source: int, resized: int, count: int, offset: int) -> tuple[np.ndarray, np.ndarray]:
    """Return source indices and integer weights, both ``(count, taps)``, for one axis.

    Output pixel ``i`` sits at position ``i + offset`` of an axis resized from ``source`` to
    ``resized`` pixels. Padding taps carry weight 0.
    """
    support = 2 * max(source, resized)
    positions = 2 * (np.arange(count, dtype=np.int64) + offset) + 1
    # The non-zero weights lie within ``support`` of the output centre, both in units of 1/(2t).
    first = np.maximum(0, (positions * source - support) // (2 * resized) - 1)
    last = np.minimum(source - 1, (positions * source + support) // (2 * resized) + 1)
    taps = int(np.max(last - first)) + 1
    indices = first[:, None] + np.arange(taps, dtype=np.int64)[None, :]
    valid = indices <= last[:, None]
    indices = np.minimum(indices, source - 1)
    distance = np.abs((2 * indices + 1) * resized - positions[:, None] * source)
    weights = np.where(valid, np.maximum(0, support - distance), 0)
    return indices, weights


def resample(image: np.ndarray, rows: tuple[np.ndarray, np.ndarray], cols: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """Apply separable integer weights; one final rounding, half up."""
    row_index, row_weight = rows
    col_index, col_weight = cols
    pixels = image.astype(np.int64)

    # Horizontal pass over every source row that some output row uses, kept exact.
    used_rows = np.unique(row_index)
    horizontal = np.zeros((len(used_rows), col_index.shape[0], image.shape[2]), dtype=np.int64)
    for tap in range(col_index.shape[1]):
        horizontal += pixels[used_rows][:, col_index[:, tap]] * col_weight[None, :, tap, None]

    position = np.searchsorted(used_rows, row_index)
    total = np.zeros((row_index.shape[0], col_index.shape[0], image.shape[2]), dtype=np.int64)
    for tap in range(row_index.shape[1]):
        total += horizontal[position[:, tap]] * row_weight[:, tap, None, None]

    denominator = row_weight.sum(axis=1)[:, None, None] * col_weight.sum(axis=1)[None, :, None]
    return ((total + denominator // 2) // denominator).astype(np.uint8)
