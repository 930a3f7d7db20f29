"""Numerical conventions: the details that must match where a model's weights came from.

Two networks with the same architecture and the same weights still disagree when these differ:
how stride-2 layers pad, the BatchNorm epsilon, how pixels are normalized, and whether the
network ends in logits or in a softmax. The builders take a ``Conventions`` and the manifest
records it, so an exported model's behaviour can be traced back to its origin.
"""

from __future__ import annotations

import dataclasses

PADDINGS = ("symmetric", "same")
OUTPUTS = ("logits", "probabilities")


@dataclasses.dataclass(frozen=True)
class Conventions:
    """How a network computes, beyond its architecture.

    Attributes:
        name: where the convention comes from, for example ``"torchvision"``.
        stride2_padding: ``"symmetric"`` pads ``k // 2`` pixels on every side before a stride-2
            convolution (PyTorch's ``padding=k // 2``); ``"same"`` is TensorFlow's SAME padding,
            which on an even input pads only the bottom and right.
        bn_epsilon: the epsilon added to the BatchNorm variance.
        mean: per-channel mean subtracted from RGB pixels in 0..255.
        std: per-channel standard deviation the centred pixels are divided by, in 0..255 units.
        output: ``"logits"``, or ``"probabilities"`` when the network ends in a softmax.
    """

    name: str
    stride2_padding: str
    bn_epsilon: float
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    output: str

    def __post_init__(self) -> None:
        if self.stride2_padding not in PADDINGS:
            raise ValueError(
                f"stride2_padding={self.stride2_padding!r} is not one of {', '.join(PADDINGS)}."
            )
        if self.output not in OUTPUTS:
            raise ValueError(f"output={self.output!r} is not one of {', '.join(OUTPUTS)}.")
        if len(self.mean) != 3 or len(self.std) != 3 or min(self.std) <= 0:
            raise ValueError(f"mean and std need 3 channels with std > 0, got {self.mean}, {self.std}.")

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "stride2_padding": self.stride2_padding,
            "bn_epsilon": self.bn_epsilon,
            "normalization": {"mean": list(self.mean), "std": list(self.std), "pixel_range": [0, 255]},
            "output": self.output,
        }

    @classmethod
    def from_dict(cls, data: dict) -> Conventions:
        normalization = data["normalization"]
        return cls(
            name=data["name"],
            stride2_padding=data["stride2_padding"],
            bn_epsilon=float(data["bn_epsilon"]),
            mean=tuple(float(v) for v in normalization["mean"]),
            std=tuple(float(v) for v in normalization["std"]),
            output=data["output"],
        )


# torchvision's ImageNet models: ``padding=k // 2`` everywhere, nn.BatchNorm2d's default epsilon,
# the ImageNet channel statistics (0.485, 0.456, 0.406) / (0.229, 0.224, 0.225) on 0..1 pixels,
# and a final nn.Linear without softmax.
TORCHVISION = Conventions(
    name="torchvision",
    stride2_padding="symmetric",
    bn_epsilon=1e-5,
    mean=(0.485 * 255, 0.456 * 255, 0.406 * 255),
    std=(0.229 * 255, 0.224 * 255, 0.225 * 255),
    output="logits",
)

# Keras Applications' MobileNets: SAME padding (their explicit ZeroPadding2D before stride-2
# depthwise layers pads exactly as SAME does), BatchNormalization(epsilon=1e-3), pixels mapped to
# [-1, 1] by x / 127.5 - 1, and a softmax classifier.
KERAS = Conventions(
    name="keras",
    stride2_padding="same",
    bn_epsilon=1e-3,
    mean=(127.5, 127.5, 127.5),
    std=(127.5, 127.5, 127.5),
    output="probabilities",
)

BY_NAME = {c.name: c for c in (TORCHVISION, KERAS)}
