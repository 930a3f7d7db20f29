"""The input contract: what every exported model takes, and how a photo becomes that input.

Every exported model takes one RGB image of shape ``[1, height, width, 3]`` (NHWC) with raw pixel
values in 0..255. Normalization (mean and std) is a layer inside the model, so neither the
calibration code, the validation code, ``predict`` nor a phone app ever normalizes pixels.

A photo becomes that input in three integer-only steps, chosen so that Kotlin and Swift code can
reproduce them bit for bit (Pillow's antialiasing resize cannot be reproduced easily on a phone):

1. **Centre crop.** The crop has the model's aspect ratio and covers ``crop_fraction`` of the
   largest such box that fits the photo. With ``k = min(photo_w * height, photo_h * width)``::

       crop_w = floor(k * num / (den * height))      crop_h = floor(k * num / (den * width))
       left = (photo_w - crop_w) // 2                top = (photo_h - crop_h) // 2

   where ``num/den`` is the crop fraction (7/8 by default, as in Inception-style evaluation:
   a 224 crop out of a 256 resize).
2. **Box prefilter.** With ``f = min(crop_w // width, crop_h // height)``, when ``f >= 2`` each
   ``f x f`` block of the crop is replaced by its mean, rounded half up; the last
   ``crop_w % f`` columns and ``crop_h % f`` rows are dropped. This stops aliasing on large
   photos without a hard-to-reproduce filter.
3. **Bilinear resize** to ``width x height`` with half-pixel centres and edge clamping, in fixed
   point. For output column ``i`` of a source of width ``s`` and target width ``t``::

       n = max((2 * i + 1) * s - t, 0)      x0 = min(n // (2 * t), s - 1)
       w1 = n % (2 * t) if x0 < s - 1 else 0   w0 = 2 * t - w1   x1 = min(x0 + 1, s - 1)

   and rows alike. A pixel is ``(sum of the four source pixels times wy * wx + D // 2) // D``
   with ``D = (2 * t_h) * (2 * t_w)``: integer arithmetic, round half up, no floating point.
"""

from __future__ import annotations

import dataclasses
from fractions import Fraction

import numpy as np

SCHEMA_VERSION = 1
DEFAULT_CROP_FRACTION = Fraction(7, 8)
RESIZE_METHOD = "box-prefilter-then-bilinear-half-pixel-fixed-point"


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
            "crop": {
                "kind": "centre",
                "aspect": "model",
                "fraction": float(self.crop_fraction),
                "fraction_numerator": self.crop_fraction.numerator,
                "fraction_denominator": self.crop_fraction.denominator,
            },
            "resize": {
                "method": RESIZE_METHOD,
                "box_prefilter": "integer factor min(crop_w // width, crop_h // height) when >= 2",
                "interpolation": "bilinear",
                "pixel_centres": "half",
                "edges": "clamp",
                "rounding": "half up, integer arithmetic",
            },
        }

    @classmethod
    def from_dict(cls, contract: dict) -> InputContract:
        _, height, width, _ = contract["shape"]
        crop = contract["crop"]
        fraction = Fraction(crop["fraction_numerator"], crop["fraction_denominator"])
        return cls(height=height, width=width, crop_fraction=fraction)

    def crop_box(self, photo_height: int, photo_width: int) -> tuple[int, int, int, int]:
        """Return ``(top, left, crop_h, crop_w)`` of the centre crop for a photo of this size."""
        num, den = self.crop_fraction.numerator, self.crop_fraction.denominator
        k = min(photo_width * self.height, photo_height * self.width)
        crop_w = max(1, k * num // (den * self.height))
        crop_h = max(1, k * num // (den * self.width))
        return (photo_height - crop_h) // 2, (photo_width - crop_w) // 2, crop_h, crop_w

    def prepare(self, rgb: np.ndarray) -> np.ndarray:
        """Turn an ``HxWx3`` uint8 RGB photo into the ``height x width x 3`` uint8 model input."""
        if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
            raise ValueError(f"Expected an HxWx3 uint8 RGB array, got {rgb.dtype} {rgb.shape}.")
        top, left, crop_h, crop_w = self.crop_box(rgb.shape[0], rgb.shape[1])
        crop = rgb[top : top + crop_h, left : left + crop_w]

        factor = min(crop_w // self.width, crop_h // self.height)
        if factor >= 2:
            crop = _box_reduce(crop, factor)

        return _bilinear_resize(crop, self.height, self.width)


def _box_reduce(image: np.ndarray, factor: int) -> np.ndarray:
    rows, cols = image.shape[0] // factor, image.shape[1] // factor
    blocks = image[: rows * factor, : cols * factor].astype(np.int64)
    sums = blocks.reshape(rows, factor, cols, factor, 3).sum(axis=(1, 3))
    area = factor * factor
    return ((sums + area // 2) // area).astype(np.uint8)


def _bilinear_taps(source: int, target: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Return the source indices and integer weights (out of ``2 * target``) for one axis."""
    i = np.arange(target, dtype=np.int64)
    n = np.maximum((2 * i + 1) * source - target, 0)
    x0 = np.minimum(n // (2 * target), source - 1)
    w1 = np.where(x0 < source - 1, n % (2 * target), 0)
    x1 = np.minimum(x0 + 1, source - 1)
    return x0, x1, 2 * target - w1, w1


def _bilinear_resize(image: np.ndarray, height: int, width: int) -> np.ndarray:
    y0, y1, wy0, wy1 = _bilinear_taps(image.shape[0], height)
    x0, x1, wx0, wx1 = _bilinear_taps(image.shape[1], width)
    pixels = image.astype(np.int64)

    # Horizontal pass first, kept exact: weights sum to 2 * width.
    top = pixels[y0][:, x0] * wx0[None, :, None] + pixels[y0][:, x1] * wx1[None, :, None]
    bottom = pixels[y1][:, x0] * wx0[None, :, None] + pixels[y1][:, x1] * wx1[None, :, None]
    total = top * wy0[:, None, None] + bottom * wy1[:, None, None]

    denominator = (2 * height) * (2 * width)
    return ((total + denominator // 2) // denominator).astype(np.uint8)
