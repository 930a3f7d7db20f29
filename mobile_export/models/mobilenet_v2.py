"""MobileNetV2: inverted residuals and linear bottlenecks (Sandler et al., 2018, arXiv:1801.04381).

Each block expands a thin bottleneck with a 1x1 convolution, filters it with a 3x3 depthwise
convolution, and projects it back to a thin bottleneck with a 1x1 convolution that has no
activation (the linear bottleneck: ReLU6 on a low-dimensional tensor destroys information). A
residual connection joins bottlenecks of equal shape.
"""

from __future__ import annotations

import dataclasses

import keras
from keras import layers

from mobile_export.models import layers as blocks
from mobile_export.models import registry
from mobile_export.models.conventions import TORCHVISION, Conventions


@dataclasses.dataclass(frozen=True)
class Stage:
    """One row of the paper's Table 2: ``repeats`` blocks, the first with stride ``stride``."""

    expansion: int
    channels: int
    repeats: int
    stride: int


# Table 2 of the paper; the comment is the stage's input size for a 224x224 image.
STAGES = (
    Stage(expansion=1, channels=16, repeats=1, stride=1),  # 112x112x32
    Stage(expansion=6, channels=24, repeats=2, stride=2),  # 112x112x16
    Stage(expansion=6, channels=32, repeats=3, stride=2),  # 56x56x24
    Stage(expansion=6, channels=64, repeats=4, stride=2),  # 28x28x32
    Stage(expansion=6, channels=96, repeats=3, stride=1),  # 14x14x64
    Stage(expansion=6, channels=160, repeats=3, stride=2),  # 14x14x96
    Stage(expansion=6, channels=320, repeats=1, stride=1),  # 7x7x160
)
STEM_CHANNELS = 32
HEAD_CHANNELS = 1280


def inverted_residual(x, *, expansion: int, filters: int, strides: int, conventions: Conventions, name: str):
    """Expand (1x1), depthwise (3x3), project (1x1, linear), and add the input when shapes match."""
    in_channels = x.shape[-1]
    shortcut = x

    if expansion != 1:
        x = blocks.conv_bn(
            x,
            filters=in_channels * expansion,
            kernel_size=1,
            strides=1,
            act="relu6",
            conventions=conventions,
            name=f"{name}_expand",
        )
    x = blocks.depthwise_bn(
        x, kernel_size=3, strides=strides, act="relu6", conventions=conventions, name=f"{name}_dw"
    )
    x = blocks.conv_bn(
        x,
        filters=filters,
        kernel_size=1,
        strides=1,
        act="linear",
        conventions=conventions,
        name=f"{name}_project",
    )

    if strides == 1 and in_channels == filters:
        x = layers.Add(name=f"{name}_add")([shortcut, x])
    return x


def build_mobilenet_v2(
    *,
    alpha: float = 1.0,
    input_shape: tuple[int, int] = (224, 224),
    num_classes: int = 1000,
    conventions: Conventions = TORCHVISION,
    batch_size: int | None = None,
) -> keras.Model:
    """Build MobileNetV2 taking RGB pixels in 0..255; normalization is the model's first layer.

    Args:
        alpha: width multiplier; every channel count is scaled by it and rounded to a multiple
            of 8. The head keeps 1280 channels unless ``alpha > 1``.
        input_shape: ``(height, width)``, each at least 32.
        num_classes: outputs of the classifier.
        conventions: padding, BatchNorm epsilon, normalization and output of the weights'
            origin; see ``mobile_export.models.conventions``.
        batch_size: fix the batch dimension (1 for export), or ``None``.

    Layer names depend only on the block index (``block3_expand_conv``, ``head_bn``), never on
    alpha or resolution, so weights map by name.
    """
    alphas = registry.get("mobilenet_v2").alphas
    if alpha not in alphas:
        raise ValueError(f"alpha={alpha} is not a MobileNetV2 width; expected one of {alphas}.")
    height, width = input_shape
    if height < 32 or width < 32:
        raise ValueError(f"input_shape={input_shape} is too small; each side must be at least 32.")

    pixels = blocks.pixel_input(height, width, batch_size)
    x = blocks.normalize(pixels, conventions)

    x = blocks.conv_bn(
        x,
        filters=blocks.make_divisible(STEM_CHANNELS * alpha),
        kernel_size=3,
        strides=2,
        act="relu6",
        conventions=conventions,
        name="stem",
    )

    index = 0
    for stage in STAGES:
        filters = blocks.make_divisible(stage.channels * alpha)
        for repeat in range(stage.repeats):
            index += 1
            x = inverted_residual(
                x,
                expansion=stage.expansion,
                filters=filters,
                strides=stage.stride if repeat == 0 else 1,
                conventions=conventions,
                name=f"block{index}",
            )

    head_channels = blocks.make_divisible(HEAD_CHANNELS * alpha) if alpha > 1.0 else HEAD_CHANNELS
    x = blocks.conv_bn(
        x, filters=head_channels, kernel_size=1, strides=1, act="relu6", conventions=conventions, name="head"
    )
    outputs = blocks.classifier_head(x, num_classes=num_classes, conventions=conventions)

    return keras.Model(pixels, outputs, name=f"mobilenet_v2_{alpha:g}_{height}x{width}")
