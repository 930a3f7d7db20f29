"""Copy Keras Applications' MobileNet weights (V1, V2, V3) onto our layer names.

Each family is a table of renames: a regular expression for a Keras layer name, our layer name
it becomes, and how its arrays convert. Keras numbers blocks from 0 and we number them from 1,
so a rename carries Keras' block index through an offset. The weights compute under
:data:`~mobile_export.models.conventions.KERAS`, for which our models take 0..255 pixels and
normalize them inside, whereas Keras' V1 and V2 expect pixels already mapped to [-1, 1].

Typical use, with Keras' own ImageNet weights::

    keras_model = build_keras_application("mobilenet_v3_small", alpha=1.0, weights="imagenet")
    ours = registry.get("mobilenet_v3_small").build(alpha=1.0, input_shape=(224, 224), conventions=KERAS)
    assign_by_name(ours, keras_applications_to_layers(keras_model, "mobilenet_v3_small", 1.0, False),
                   origin="Keras Applications")
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable

import numpy as np

from mobile_export.models.layers import make_divisible
from mobile_export.models.weights import WeightsError

__all__ = ["FAMILIES", "KerasFamily", "Rename", "build_keras_application", "keras_applications_to_layers"]


def _same(arrays: list[np.ndarray]) -> list[np.ndarray]:
    return arrays


def _dense_from_conv(arrays: list[np.ndarray]) -> list[np.ndarray]:
    """Turn a 1x1 convolution applied to a pooled 1x1 map into the equivalent dense layer."""
    kernel, bias = arrays
    return [kernel[0, 0], bias]


def _truncate(channels: float) -> int:
    return int(channels)


@dataclasses.dataclass(frozen=True)
class Rename:
    """Keras layers whose name fully matches ``pattern`` become our layer ``ours``.

    ``pattern`` may capture Keras' block index as the group ``index`` (absent means block 0);
    ``ours`` receives our block index as ``{index}``.
    """

    pattern: str
    ours: str
    convert: Callable[[list[np.ndarray]], list[np.ndarray]] = _same


@dataclasses.dataclass(frozen=True)
class KerasFamily:
    """The Keras Applications counterpart of one of our architectures.

    Attributes:
        application: the constructor's name in ``keras.applications``.
        renames: every weighted Keras layer must match one of them; the first match is used.
        block_offset: our block index minus Keras' block index.
        blocks: how many blocks our architecture has, which distinguishes V3-Small from V3-Large.
        width_probe: a Keras layer whose output channels reveal alpha: its name, its channels
            at alpha 1 and the rounding the family applies after scaling.
        classifier: the Keras layer that only exists with ``include_top=True``.
        squeeze_excite: a substring of Keras' squeeze-and-excite layer names, for families that
            have a minimalistic variant without them; ``None`` otherwise.
    """

    application: str
    renames: tuple[Rename, ...]
    block_offset: int
    blocks: int
    width_probe: tuple[str, int, Callable[[float], int]]
    classifier: str
    squeeze_excite: str | None = None


def _block_renames(keras_prefix: str, parts: dict[str, str]) -> tuple[Rename, ...]:
    return tuple(Rename(keras_prefix + keras, f"block{{index}}_{ours}") for keras, ours in parts.items())


_V1 = KerasFamily(
    application="MobileNet",
    renames=(
        Rename("conv1", "stem_conv"),
        Rename("conv1_bn", "stem_bn"),
        Rename(r"conv_dw_(?P<index>\d+)", "block{index}_dw_conv"),
        Rename(r"conv_dw_(?P<index>\d+)_bn", "block{index}_dw_bn"),
        Rename(r"conv_pw_(?P<index>\d+)", "block{index}_pw_conv"),
        Rename(r"conv_pw_(?P<index>\d+)_bn", "block{index}_pw_bn"),
        Rename("conv_preds", "logits", _dense_from_conv),
    ),
    block_offset=0,
    blocks=13,
    width_probe=("conv_pw_13", 1024, _truncate),
    classifier="conv_preds",
)

_V2 = KerasFamily(
    application="MobileNetV2",
    renames=(
        Rename("Conv1", "stem_conv"),
        Rename("bn_Conv1", "stem_bn"),
        *_block_renames(
            r"(?:expanded_conv|block_(?P<index>\d+))_",
            {
                "expand": "expand_conv",
                "expand_BN": "expand_bn",
                "depthwise": "dw_conv",
                "depthwise_BN": "dw_bn",
                "project": "project_conv",
                "project_BN": "project_bn",
            },
        ),
        Rename("Conv_1", "head_conv"),
        Rename("Conv_1_bn", "head_bn"),
        Rename("predictions", "logits"),
    ),
    block_offset=1,
    blocks=17,
    width_probe=("block_16_project", 320, make_divisible),
    classifier="predictions",
)

_V3_RENAMES = (
    Rename("conv", "stem_conv"),
    Rename("conv_bn", "stem_bn"),
    *_block_renames(
        r"expanded_conv_(?:(?P<index>\d+)_)?",
        {
            "expand": "expand_conv",
            "expand_bn": "expand_bn",
            "depthwise": "dw_conv",
            "depthwise_bn": "dw_bn",
            "squeeze_excite_conv": "se_reduce",
            "squeeze_excite_conv_1": "se_expand",
            "project": "project_conv",
            "project_bn": "project_bn",
        },
    ),
    Rename("conv_1", "head_conv"),
    Rename("conv_1_bn", "head_bn"),
    Rename("conv_2", "embedding", _dense_from_conv),
    Rename("logits", "logits", _dense_from_conv),
)

FAMILIES = {
    "mobilenet_v1": _V1,
    "mobilenet_v2": _V2,
    "mobilenet_v3_small": KerasFamily(
        application="MobileNetV3Small",
        renames=_V3_RENAMES,
        block_offset=1,
        blocks=11,
        width_probe=("expanded_conv_10_project", 96, make_divisible),
        classifier="logits",
        squeeze_excite="squeeze_excite",
    ),
    "mobilenet_v3_large": KerasFamily(
        application="MobileNetV3Large",
        renames=_V3_RENAMES,
        block_offset=1,
        blocks=15,
        width_probe=("expanded_conv_14_project", 160, make_divisible),
        classifier="logits",
        squeeze_excite="squeeze_excite",
    ),
}


def _family(arch: str) -> KerasFamily:
    try:
        return FAMILIES[arch]
    except KeyError:
        raise WeightsError(
            f"Keras Applications has no counterpart for {arch!r}; expected one of {', '.join(FAMILIES)}."
        ) from None


def build_keras_application(
    arch: str,
    *,
    alpha: float,
    minimalistic: bool = False,
    input_shape: tuple[int, int] = (224, 224),
    **options,
):
    """Build the Keras Applications model that corresponds to one of our variants.

    ``options`` go to the Keras constructor unchanged, for example ``weights=None`` for random
    weights or ``classifier_activation=None`` for logits; Keras' default ``weights="imagenet"``
    downloads a file.
    """
    import keras

    family = _family(arch)
    if minimalistic and family.squeeze_excite is None:
        raise WeightsError(f"{arch} has no minimalistic variant in Keras Applications; pass minimalistic=False.")
    if family.squeeze_excite is not None:
        options["minimalistic"] = minimalistic

    constructor = getattr(keras.applications, family.application)
    return constructor(input_shape=(*input_shape, 3), alpha=alpha, **options)


def keras_applications_to_layers(
    keras_model, arch: str, alpha: float, minimalistic: bool = False
) -> dict[str, list[np.ndarray]]:
    """Map a Keras Applications model's weights onto our layer names and layouts.

    The model must have been built with ``include_top=True`` and the same ``alpha`` and
    ``minimalistic``. Any input size works, because no weight depends on it. Load the result with
    :func:`mobile_export.models.weights.assign_by_name`, which checks every shape.

    Raises:
        WeightsError: ``arch`` has no Keras counterpart, or the Keras model is another family,
            has no classifier, or was built with another alpha or minimalistic setting.
    """
    family = _family(arch)
    weighted = [layer for layer in keras_model.layers if layer.weights]

    renamed = {layer.name: _rename(family, layer.name) for layer in weighted}
    unmatched = [name for name, found in renamed.items() if found is None]
    if unmatched:
        raise WeightsError(
            f"{keras_model.name} has layers that {arch} does not have: {', '.join(unmatched[:5])}; "
            "check that the Keras model and arch are the same MobileNet family."
        )
    _check_variant(family, keras_model, renamed, arch, alpha, minimalistic)

    arrays: dict[str, list[np.ndarray]] = {}
    for layer in weighted:
        rename, ours, _ = renamed[layer.name]
        arrays[ours] = [np.asarray(array) for array in rename.convert(layer.get_weights())]
    return arrays


def _rename(family: KerasFamily, keras_name: str) -> tuple[Rename, str, int | None] | None:
    """Return the matching rename, our layer name and our block index (``None`` outside blocks)."""
    for rename in family.renames:
        match = re.fullmatch(rename.pattern, keras_name)
        if match is None:
            continue
        if "index" not in match.re.groupindex:
            return rename, rename.ours, None
        keras_index = match["index"]
        index = (0 if keras_index is None else int(keras_index)) + family.block_offset
        return rename, rename.ours.format(index=index), index
    return None


def _check_variant(family: KerasFamily, keras_model, renamed: dict, arch: str, alpha: float, minimalistic: bool):
    """Reject a Keras model that would load into a model of another shape, naming what differs."""
    blocks = max(index for _, _, index in renamed.values() if index is not None)
    if blocks != family.blocks:
        raise WeightsError(
            f"{keras_model.name} has {blocks} blocks, where {arch} has {family.blocks}; "
            "check that the Keras model and arch are the same MobileNet."
        )

    if family.classifier not in renamed:
        raise WeightsError(
            f"{keras_model.name} has no classifier layer {family.classifier!r}; "
            "build the Keras model with include_top=True."
        )

    probe, channels, rounding = family.width_probe
    found = keras_model.get_layer(probe).get_weights()[0].shape[-1]
    expected = rounding(channels * alpha)
    if found != expected:
        raise WeightsError(
            f"{keras_model.name} has {found} channels in {probe}, where alpha={alpha:g} gives {expected}; "
            "pass the alpha the Keras model was built with."
        )

    if family.squeeze_excite is not None:
        has_squeeze_excite = any(family.squeeze_excite in name for name in renamed)
        if has_squeeze_excite == minimalistic:
            present = "has" if has_squeeze_excite else "has no"
            needed = "without" if minimalistic else "with"
            raise WeightsError(
                f"{keras_model.name} {present} squeeze-and-excite layers, but minimalistic={minimalistic} "
                f"needs a model {needed} them; pass minimalistic={not minimalistic}."
            )
