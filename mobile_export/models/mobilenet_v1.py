"""MobileNetV1: depthwise separable convolutions (Howard et al., 2017, arXiv:1704.04861).

A standard 3x3 convolution is factored into a 3x3 depthwise convolution, which filters each
channel on its own, and a 1x1 pointwise convolution, which mixes channels. Each is followed by
BatchNorm and ReLU6. For 3x3 kernels this costs 8 to 9 times fewer multiply-adds than the
standard convolution, at a small loss of accuracy.
"""

from __future__ import annotations

import dataclasses

import keras
from keras import layers

from mobile_export.models import layers as blocks
from mobile_export.models import registry
from mobile_export.models.conventions import KERAS, Conventions


@dataclasses.dataclass(frozen=True)
class Stage:
    """``repeats`` depthwise separable blocks with ``channels`` outputs, the first with ``stride``."""

    channels: int
    repeats: int
    stride: int


# Table 1 of the paper, one row per output width; the comment is the stage's input size for a
# 224x224 image. The table prints stride 2 for the second 1024-channel block, but its output
# stays 7x7, and Keras Applications uses stride 1 there too.
STAGES = (
    Stage(channels=64, repeats=1, stride=1),  # 112x112x32
    Stage(channels=128, repeats=2, stride=2),  # 112x112x64
    Stage(channels=256, repeats=2, stride=2),  # 56x56x128
    Stage(channels=512, repeats=6, stride=2),  # 28x28x256
    Stage(channels=1024, repeats=2, stride=2),  # 14x14x512
)
STEM_CHANNELS = 32


def scale_channels(channels: int, alpha: float) -> int:
    """Scale a channel count by ``alpha`` and truncate, as Keras Applications does.

    V1 predates the rounding to multiples of 8 that V2 introduced; for the widths in the
    registry every product is already an integer.
    """
    return int(channels * alpha)


def _keras_stride2_padding(x, name: str):
    """Return ``(x, padding)`` for a stride-2 depthwise layer padded as Keras Applications' V1.

    Keras pads one row at the bottom and one column at the right, then convolves with VALID
    padding. On an even side that equals SAME. On an odd side the padded row is never read, so
    it is VALID, and the output has ``n // 2`` pixels where SAME would give ``n // 2 + 1``.
    Padding only the even sides keeps a PAD op out of the graph unless the sides differ.
    """
    height, width = x.shape[1], x.shape[2]
    pad_bottom, pad_right = 1 - height % 2, 1 - width % 2
    if pad_bottom and pad_right:
        return x, "same"
    if pad_bottom or pad_right:
        x = layers.ZeroPadding2D(padding=((0, pad_bottom), (0, pad_right)), name=f"{name}_pad")(x)
    return x, "valid"


def depthwise_separable(x, *, filters: int, strides: int, conventions: Conventions, name: str):
    """Depthwise 3x3 (``{name}_dw_*``), then pointwise 1x1 (``{name}_pw_*``), each with ReLU6."""
    padding = None
    if strides == 2 and conventions.stride2_padding == "same":
        x, padding = _keras_stride2_padding(x, f"{name}_dw")
    x = blocks.depthwise_bn(
        x,
        kernel_size=3,
        strides=strides,
        act="relu6",
        conventions=conventions,
        name=f"{name}_dw",
        padding=padding,
    )
    return blocks.conv_bn(
        x, filters=filters, kernel_size=1, strides=1, act="relu6", conventions=conventions, name=f"{name}_pw"
    )


def build_mobilenet_v1(
    *,
    alpha: float = 1.0,
    input_shape: tuple[int, int] = (224, 224),
    num_classes: int = 1000,
    conventions: Conventions = KERAS,
    batch_size: int | None = None,
) -> keras.Model:
    """Build MobileNetV1 taking RGB pixels in 0..255; normalization is the model's first layer.

    Args:
        alpha: width multiplier; every channel count is scaled by it and truncated to an
            integer, without rounding to a multiple of 8.
        input_shape: ``(height, width)``, each at least 32.
        num_classes: outputs of the classifier.
        conventions: padding, BatchNorm epsilon, normalization and output of the weights'
            origin; see ``mobile_export.models.conventions``. Under ``"same"`` padding the
            stride-2 depthwise layers pad as Keras Applications' MobileNet does, which differs
            from SAME on odd feature map sizes.
        batch_size: fix the batch dimension (1 for export), or ``None``.

    Layer names depend only on the block index (``block3_dw_conv``, ``block3_pw_bn``), never on
    alpha or resolution, so weights map by name. Keras Applications' 1x1 convolution classifier
    becomes the dense ``logits`` layer.
    """
    alphas = registry.get("mobilenet_v1").alphas
    if alpha not in alphas:
        raise ValueError(f"alpha={alpha} is not a MobileNetV1 width; expected one of {alphas}.")
    height, width = input_shape
    if height < 32 or width < 32:
        raise ValueError(f"input_shape={input_shape} is too small; each side must be at least 32.")

    pixels = blocks.pixel_input(height, width, batch_size)
    x = blocks.normalize(pixels, conventions)

    x = blocks.conv_bn(
        x,
        filters=scale_channels(STEM_CHANNELS, alpha),
        kernel_size=3,
        strides=2,
        act="relu6",
        conventions=conventions,
        name="stem",
    )

    index = 0
    for stage in STAGES:
        for repeat in range(stage.repeats):
            index += 1
            x = depthwise_separable(
                x,
                filters=scale_channels(stage.channels, alpha),
                strides=stage.stride if repeat == 0 else 1,
                conventions=conventions,
                name=f"block{index}",
            )

    outputs = blocks.classifier_head(x, num_classes=num_classes, conventions=conventions)

    return keras.Model(pixels, outputs, name=f"mobilenet_v1_{alpha:g}_{height}x{width}")
