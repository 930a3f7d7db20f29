"""Building blocks shared by the MobileNet families.

Every helper takes the layer-name prefix it must use, so a weight file or a converted tensor can be
traced to the same block in every architecture, resolution and export. Keras is imported lazily by
the callers' modules; these functions receive Keras tensors.
"""

from __future__ import annotations

import keras
from keras import layers

from mobile_export.models.conventions import Conventions

ACTIVATIONS = ("relu", "relu6", "hard_swish", "hard_sigmoid", "linear")


def make_divisible(value: float, divisor: int = 8, min_value: int | None = None) -> int:
    """Round a channel count to a multiple of ``divisor``, never more than 10% below ``value``.

    MobileNet V2 and V3 keep every channel count a multiple of 8 after applying the width
    multiplier, because mobile kernels vectorize over 8 or 16 channels.
    """
    min_value = divisor if min_value is None else min_value
    rounded = max(min_value, int(value + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * value:
        rounded += divisor
    return rounded


def activation(x, kind: str, name: str):
    """Apply ``kind`` as a named layer; ``"linear"`` (a linear bottleneck) adds no layer."""
    if kind == "linear":
        return x
    if kind == "relu":
        return layers.ReLU(name=f"{name}_relu")(x)
    if kind == "relu6":
        return layers.ReLU(max_value=6.0, name=f"{name}_relu6")(x)
    if kind == "hard_swish":
        # Keras 3.15 computes x * (relu6(x + 3) / 6), and TensorFlow 2.21's TFLite converter
        # fuses that into one HARD_SWISH op.
        return layers.Activation("hard_swish", name=f"{name}_hswish")(x)
    if kind == "hard_sigmoid":
        return layers.Activation("hard_sigmoid", name=f"{name}_hsigmoid")(x)
    raise ValueError(f"Unknown activation {kind!r}; expected one of {', '.join(ACTIVATIONS)}.")


def _padding(x, kernel_size: int, strides: int, conventions: Conventions, name: str):
    """Return ``(x, padding)`` so that a convolution pads as ``conventions`` say.

    Stride 1 and odd kernels pad symmetrically under every convention, as does stride 2 on an odd
    input, so only stride 2 on an even input needs an explicit ZeroPadding2D. Skipping it where it
    is not needed keeps PAD ops out of the exported graph.
    """
    if strides == 1 or conventions.stride2_padding == "same":
        return x, "same"
    height, width = x.shape[1], x.shape[2]
    if height % 2 == 1 and width % 2 == 1:
        return x, "same"
    return layers.ZeroPadding2D(padding=kernel_size // 2, name=f"{name}_pad")(x), "valid"


def conv_bn(
    x,
    *,
    filters: int,
    kernel_size: int,
    strides: int,
    act: str,
    conventions: Conventions,
    name: str,
):
    """Convolution without bias, BatchNorm, then the activation ``act``."""
    x, padding = _padding(x, kernel_size, strides, conventions, name)
    x = layers.Conv2D(
        filters,
        kernel_size,
        strides=strides,
        padding=padding,
        use_bias=False,
        name=f"{name}_conv",
    )(x)
    x = layers.BatchNormalization(epsilon=conventions.bn_epsilon, name=f"{name}_bn")(x)
    return activation(x, act, name)


def depthwise_bn(
    x,
    *,
    kernel_size: int,
    strides: int,
    act: str,
    conventions: Conventions,
    name: str,
    padding: str | None = None,
):
    """Depthwise convolution (one filter per channel) without bias, BatchNorm, activation.

    ``padding`` (``"same"`` or ``"valid"``) is for a caller that already padded ``x`` itself;
    by default the conventions decide.
    """
    if padding is None:
        x, padding = _padding(x, kernel_size, strides, conventions, name)
    x = layers.DepthwiseConv2D(
        kernel_size,
        strides=strides,
        padding=padding,
        use_bias=False,
        name=f"{name}_conv",
    )(x)
    x = layers.BatchNormalization(epsilon=conventions.bn_epsilon, name=f"{name}_bn")(x)
    return activation(x, act, name)


def squeeze_excite(x, *, ratio: float, name: str):
    """Rescale each channel by a gate computed from the whole feature map (Hu et al., 2018).

    Global average pooling, a 1x1 convolution down to ``make_divisible(channels * ratio)`` with
    ReLU, a 1x1 convolution back up with hard-sigmoid, then a multiply. MobileNetV3 uses
    ``ratio=0.25`` of the expanded channels, which gives 240 -> 64 -> 240, for example.

    Keras Applications computes the gate as ``relu6(x + 3) * (1 / 6)``; the hard-sigmoid here
    divides by 6 instead, which changes a gate by one float32 rounding step (6e-8) at most. Both
    convert to the same TFLite ADD and MUL ops.
    """
    channels = x.shape[-1]
    gate = layers.GlobalAveragePooling2D(keepdims=True, name=f"{name}_pool")(x)
    gate = layers.Conv2D(make_divisible(channels * ratio), 1, name=f"{name}_reduce")(gate)
    gate = activation(gate, "relu", f"{name}_reduce")
    gate = layers.Conv2D(channels, 1, name=f"{name}_expand")(gate)
    gate = activation(gate, "hard_sigmoid", name)
    return layers.Multiply(name=f"{name}_scale")([x, gate])


def normalize(pixels, conventions: Conventions):
    """Map 0..255 RGB pixels to the network's input range, as a layer inside the model."""
    variance = [s * s for s in conventions.std]
    return layers.Normalization(
        axis=-1, mean=list(conventions.mean), variance=variance, name="normalize"
    )(pixels)


def classifier_head(
    x,
    *,
    num_classes: int,
    conventions: Conventions,
    embedding_units: int | None = None,
    embedding_act: str = "linear",
):
    """Global average pooling, a dense classifier and, if the conventions say so, a softmax.

    With ``embedding_units``, a dense layer named ``embedding`` and its activation come between
    the pooling and the classifier, as in MobileNetV3's head.
    """
    x = layers.GlobalAveragePooling2D(name="pool")(x)
    if embedding_units is not None:
        x = layers.Dense(embedding_units, name="embedding")(x)
        x = activation(x, embedding_act, "embedding")
    x = layers.Dense(num_classes, name="logits")(x)
    if conventions.output == "probabilities":
        x = layers.Softmax(name="probabilities")(x)
    return x


def pixel_input(height: int, width: int, batch_size: int | None):
    """The model input: RGB pixels in 0..255 as float32, NHWC."""
    return keras.Input(shape=(height, width, 3), batch_size=batch_size, name="pixels")
