"""The representative dataset: what full-integer quantization calibrates activation ranges on.

Samples are the prepared calibration photos first, then augmented copies of them (mirror, a
random crop resized back with the contract's own bilinear filter, brightness and contrast jitter)
until ``count`` is reached. A handful of photos thus still gives ranges from varied inputs.

One sample is a contrast stretch of the first photo to the full 0..255 range. The input tensor's
quantization comes from the smallest and largest calibration pixel; with both 0 and 255 present,
uint8 input gets scale 1 and zero point 0, so raw pixels pass into the model unchanged.
"""

from __future__ import annotations

import numpy as np

from mobile_export.contract import resample, triangle_taps

DEFAULT_SAMPLES = 100


def representative_dataset(images: np.ndarray, *, count: int = DEFAULT_SAMPLES, seed: int = 0) -> np.ndarray:
    """Return ``count`` float32 samples ``(count, H, W, 3)`` in 0..255 built from ``images``."""
    if len(images) == 0:
        raise ValueError("Calibration needs at least one image.")
    rng = np.random.default_rng(seed)
    samples = [_stretch_to_full_range(images[0])]
    samples.extend(images[: count - 1])
    while len(samples) < count:
        samples.append(_augment(images[rng.integers(len(images))], rng))
    return np.stack(samples[:count]).astype(np.float32)


def _stretch_to_full_range(image: np.ndarray) -> np.ndarray:
    values = image.astype(np.float32)
    low, high = float(values.min()), float(values.max())
    if high == low:
        stretched = np.zeros_like(values)
        stretched[..., 0] = 255.0
        return stretched.astype(np.uint8)
    return np.round((values - low) * (255.0 / (high - low))).astype(np.uint8)


def _augment(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    height, width = image.shape[:2]
    if rng.random() < 0.5:
        image = image[:, ::-1]

    scale = rng.uniform(0.6, 1.0)
    crop_h, crop_w = max(8, int(height * scale)), max(8, int(width * scale))
    top = int(rng.integers(0, height - crop_h + 1))
    left = int(rng.integers(0, width - crop_w + 1))
    crop = image[top : top + crop_h, left : left + crop_w]
    image = resample(crop, triangle_taps(crop_h, height, height, 0), triangle_taps(crop_w, width, width, 0))

    gain = rng.uniform(0.75, 1.25)
    offset = rng.uniform(-25.0, 25.0)
    jittered = image.astype(np.float32) * gain + offset
    return np.clip(np.round(jittered), 0, 255).astype(np.uint8)


class CalibrationDataError(ValueError):
    """Calibration photos that cannot give meaningful activation ranges."""


MIN_PHOTOS = 8


def check_calibration(images: np.ndarray) -> list[str]:
    """Reject calibration data that cannot be right, and return warnings for data that may not be.

    Rejected: photos that are almost black (all values <= 1, the mark of 0..1 data saved as 8-bit
    pixels, since the contract expects 0..255), and noise, recognised by neighbouring pixels
    that do not correlate (natural photos correlate above 0.8; uniform noise near 0). Warned:
    fewer than ``MIN_PHOTOS`` photos, since augmentation only varies what is there.
    """
    values = images.astype(np.float32)
    if float(values.max()) <= 1.0:
        raise CalibrationDataError(
            f"Calibration photos are almost black (largest value {values.max():g}): they look like 0..1 data "
            "stored as pixels, but the model takes 0..255; pass photos with their normal brightness."
        )
    left, right = values[:, :, :-1].reshape(len(values), -1), values[:, :, 1:].reshape(len(values), -1)
    correlations = []
    for a, b in zip(left, right):
        if a.std() > 0 and b.std() > 0:
            correlations.append(float(np.corrcoef(a, b)[0, 1]))
    if correlations and float(np.median(correlations)) < 0.3:
        raise CalibrationDataError(
            f"Calibration photos look like random noise (median neighbouring-pixel correlation "
            f"{np.median(correlations):.2f}, photos give above 0.8); pass real photos with --calibration-data."
        )
    warnings = []
    if len(images) < MIN_PHOTOS:
        warnings.append(
            f"only {len(images)} calibration photos; activation ranges from so few are unreliable "
            f"(augmentation varies only what is there), so use {MIN_PHOTOS} or more, ideally a few hundred"
        )
    return warnings


def output_range_for(logits: np.ndarray) -> tuple[float, float]:
    """Return the int8 output range for a logits model: twice what the calibration photos give.

    Calibration photos are often textures and scenes, whose logits stay well below those of a
    clear subject (about 12-18 against 19-22 on the bundled photos with the ImageNet V2), so the
    calibrated range would clip real answers. Doubling it costs about one bit of output
    resolution, far less than the error of int8 activations.
    """
    low = min(float(np.min(logits)), 0.0)
    high = max(float(np.max(logits)), 0.0)
    return 2.0 * low, 2.0 * high
