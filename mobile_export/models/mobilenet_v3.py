"""MobileNetV3 Large and Small (Howard et al., 2019, "Searching for MobileNetV3", arXiv:1905.02244).

V3 keeps V2's inverted residual block and adds, per block, a choice found by architecture search:
a 3x3 or 5x5 depthwise kernel, ReLU or hard-swish (``x * relu6(x + 3) / 6``), and an optional
squeeze-and-excite gate after the depthwise convolution. The head pools before its last wide
layer, so that layer costs a dense product instead of a 7x7 convolution.

The minimalistic variants, which Keras Applications also builds, keep every layer's size but
drop the searched extras: no squeeze-and-excite, ReLU instead of hard-swish and 3x3 kernels
instead of 5x5. Keras 3.15's documentation lists 72.3% ImageNet top-1 for
Large minimalistic against 75.6% for Large, and calls the minimalistic models slower on CPU but
much faster on GPUs and DSPs.
"""

from __future__ import annotations

import dataclasses

import keras
from keras import layers

from mobile_export.models import layers as blocks
from mobile_export.models import registry
from mobile_export.models.conventions import KERAS, Conventions


@dataclasses.dataclass(frozen=True)
class Block:
    """One bottleneck row of the paper's Tables 1 and 2.

    ``expansion`` multiplies the block's input channels. At ``alpha=1`` the product is the
    table's "exp size". The table keeps the ratio because Keras Applications computes the
    expanded width as ``make_divisible(input channels * expansion)`` at every alpha. ``act`` is
    ``"relu"`` or ``"hard_swish"``.
    """

    kernel: int
    expansion: float
    channels: int
    se: bool
    act: str
    stride: int


# Table 1 (MobileNetV3-Large); the comment is the block's input size for a 224x224 image.
LARGE = (
    Block(kernel=3, expansion=1, channels=16, se=False, act="relu", stride=1),  # 112x112x16
    Block(kernel=3, expansion=4, channels=24, se=False, act="relu", stride=2),  # 112x112x16
    Block(kernel=3, expansion=3, channels=24, se=False, act="relu", stride=1),  # 56x56x24
    Block(kernel=5, expansion=3, channels=40, se=True, act="relu", stride=2),  # 56x56x24
    Block(kernel=5, expansion=3, channels=40, se=True, act="relu", stride=1),  # 28x28x40
    Block(kernel=5, expansion=3, channels=40, se=True, act="relu", stride=1),  # 28x28x40
    Block(kernel=3, expansion=6, channels=80, se=False, act="hard_swish", stride=2),  # 28x28x40
    Block(kernel=3, expansion=2.5, channels=80, se=False, act="hard_swish", stride=1),  # 14x14x80
    Block(kernel=3, expansion=2.3, channels=80, se=False, act="hard_swish", stride=1),  # 14x14x80
    Block(kernel=3, expansion=2.3, channels=80, se=False, act="hard_swish", stride=1),  # 14x14x80
    Block(kernel=3, expansion=6, channels=112, se=True, act="hard_swish", stride=1),  # 14x14x80
    Block(kernel=3, expansion=6, channels=112, se=True, act="hard_swish", stride=1),  # 14x14x112
    Block(kernel=5, expansion=6, channels=160, se=True, act="hard_swish", stride=2),  # 14x14x112
    Block(kernel=5, expansion=6, channels=160, se=True, act="hard_swish", stride=1),  # 7x7x160
    Block(kernel=5, expansion=6, channels=160, se=True, act="hard_swish", stride=1),  # 7x7x160
)

# Table 2 (MobileNetV3-Small). The table's expanded widths 72 and 88 are not whole multiples of
# the input channels, so those rows keep the exact ratio.
SMALL = (
    Block(kernel=3, expansion=1, channels=16, se=True, act="relu", stride=2),  # 112x112x16
    Block(kernel=3, expansion=72 / 16, channels=24, se=False, act="relu", stride=2),  # 56x56x16
    Block(kernel=3, expansion=88 / 24, channels=24, se=False, act="relu", stride=1),  # 28x28x24
    Block(kernel=5, expansion=4, channels=40, se=True, act="hard_swish", stride=2),  # 28x28x24
    Block(kernel=5, expansion=6, channels=40, se=True, act="hard_swish", stride=1),  # 14x14x40
    Block(kernel=5, expansion=6, channels=40, se=True, act="hard_swish", stride=1),  # 14x14x40
    Block(kernel=5, expansion=3, channels=48, se=True, act="hard_swish", stride=1),  # 14x14x40
    Block(kernel=5, expansion=3, channels=48, se=True, act="hard_swish", stride=1),  # 14x14x48
    Block(kernel=5, expansion=6, channels=96, se=True, act="hard_swish", stride=2),  # 14x14x48
    Block(kernel=5, expansion=6, channels=96, se=True, act="hard_swish", stride=1),  # 7x7x96
    Block(kernel=5, expansion=6, channels=96, se=True, act="hard_swish", stride=1),  # 7x7x96
)

# Keras Applications keeps the stem at 16 channels for every alpha.
STEM_CHANNELS = 16
# The last 1x1 convolution before pooling widens the final bottleneck six times: 960 for Large
# and 576 for Small at alpha 1.
HEAD_EXPANSION = 6
SE_RATIO = 0.25
LARGE_EMBEDDING_UNITS = 1280
SMALL_EMBEDDING_UNITS = 1024


def minimalistic_block(block: Block) -> Block:
    """Return ``block`` without squeeze-and-excite, with ReLU and with a 3x3 kernel."""
    return dataclasses.replace(block, kernel=3, se=False, act="relu")


def bottleneck(x, *, block: Block, filters: int, strides: int, conventions: Conventions, name: str):
    """Expand (1x1), depthwise (k x k), squeeze-excite, project (1x1, linear), and add."""
    in_channels = x.shape[-1]
    shortcut = x

    if block.expansion != 1:
        x = blocks.conv_bn(
            x,
            filters=blocks.make_divisible(in_channels * block.expansion),
            kernel_size=1,
            strides=1,
            act=block.act,
            conventions=conventions,
            name=f"{name}_expand",
        )
    x = blocks.depthwise_bn(
        x, kernel_size=block.kernel, strides=strides, act=block.act, conventions=conventions, name=f"{name}_dw"
    )
    if block.se:
        x = blocks.squeeze_excite(x, ratio=SE_RATIO, name=f"{name}_se")
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


def _build(
    *,
    arch: str,
    table: tuple[Block, ...],
    embedding_units: int,
    alpha: float,
    input_shape: tuple[int, int],
    num_classes: int,
    conventions: Conventions,
    batch_size: int | None,
    minimalistic: bool,
) -> keras.Model:
    alphas = registry.get(arch).alphas
    if alpha not in alphas:
        raise ValueError(f"alpha={alpha} is not a {arch} width; expected one of {alphas}.")
    height, width = input_shape
    if height < 32 or width < 32:
        raise ValueError(f"input_shape={input_shape} is too small; each side must be at least 32.")
    if minimalistic:
        table = tuple(minimalistic_block(block) for block in table)
    act = "relu" if minimalistic else "hard_swish"

    pixels = blocks.pixel_input(height, width, batch_size)
    x = blocks.normalize(pixels, conventions)

    x = blocks.conv_bn(
        x, filters=STEM_CHANNELS, kernel_size=3, strides=2, act=act, conventions=conventions, name="stem"
    )

    for index, block in enumerate(table, start=1):
        x = bottleneck(
            x,
            block=block,
            filters=blocks.make_divisible(block.channels * alpha),
            strides=block.stride,
            conventions=conventions,
            name=f"block{index}",
        )

    x = blocks.conv_bn(
        x,
        filters=blocks.make_divisible(x.shape[-1] * HEAD_EXPANSION),
        kernel_size=1,
        strides=1,
        act=act,
        conventions=conventions,
        name="head",
    )
    if alpha > 1.0:
        embedding_units = blocks.make_divisible(embedding_units * alpha)
    outputs = blocks.classifier_head(
        x, num_classes=num_classes, conventions=conventions, embedding_units=embedding_units, embedding_act=act
    )

    suffix = "_minimalistic" if minimalistic else ""
    return keras.Model(pixels, outputs, name=f"{arch}{suffix}_{alpha:g}_{height}x{width}")


def build_mobilenet_v3_large(
    *,
    alpha: float = 1.0,
    input_shape: tuple[int, int] = (224, 224),
    num_classes: int = 1000,
    conventions: Conventions = KERAS,
    batch_size: int | None = None,
    minimalistic: bool = False,
) -> keras.Model:
    """Build MobileNetV3-Large taking RGB pixels in 0..255; normalization is the first layer.

    Args:
        alpha: width multiplier for the bottlenecks, rounded to multiples of 8. The 16-channel
            stem keeps its width, and the 1280-unit embedding grows only when ``alpha > 1``.
        input_shape: ``(height, width)``, each at least 32.
        num_classes: outputs of the classifier.
        conventions: padding, BatchNorm epsilon, normalization and output of the weights'
            origin; see ``mobile_export.models.conventions``.
        batch_size: fix the batch dimension (1 for export), or ``None``.
        minimalistic: no squeeze-and-excite, ReLU everywhere and only 3x3 kernels.

    Layer names depend only on the block index (``block3_expand_conv``, ``block4_se_reduce``),
    never on alpha or resolution, so weights map by name. The head is ``head_conv``/``head_bn``,
    then ``pool``, the dense ``embedding`` and the dense ``logits``; Keras Applications' 1x1
    convolutions after its pooling hold the same weights. Keras' dropout before the classifier
    does nothing at inference and is left out.
    """
    return _build(
        arch="mobilenet_v3_large",
        table=LARGE,
        embedding_units=LARGE_EMBEDDING_UNITS,
        alpha=alpha,
        input_shape=input_shape,
        num_classes=num_classes,
        conventions=conventions,
        batch_size=batch_size,
        minimalistic=minimalistic,
    )


def build_mobilenet_v3_small(
    *,
    alpha: float = 1.0,
    input_shape: tuple[int, int] = (224, 224),
    num_classes: int = 1000,
    conventions: Conventions = KERAS,
    batch_size: int | None = None,
    minimalistic: bool = False,
) -> keras.Model:
    """Build MobileNetV3-Small taking RGB pixels in 0..255; normalization is the first layer.

    Takes the same arguments as :func:`build_mobilenet_v3_large` and names layers the same way;
    its embedding has 1024 units.
    """
    return _build(
        arch="mobilenet_v3_small",
        table=SMALL,
        embedding_units=SMALL_EMBEDDING_UNITS,
        alpha=alpha,
        input_shape=input_shape,
        num_classes=num_classes,
        conventions=conventions,
        batch_size=batch_size,
        minimalistic=minimalistic,
    )
