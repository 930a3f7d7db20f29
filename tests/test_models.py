"""Every registry architecture: parameter counts, V3's minimalistic variant, names, padding."""

import keras
import pytest

from mobile_export.models import registry
from mobile_export.models.conventions import KERAS, TORCHVISION
from mobile_export.models.keras_import import build_keras_application

VARIANTS = list(registry.variants())
MINIMALISTIC_ARCHS = [arch.name for arch in registry.ARCHITECTURES.values() if arch.has_minimalistic]


def variant_id(variant) -> str:
    arch, alpha, minimalistic = variant
    return f"{arch}-{alpha:g}" + ("-minimalistic" if minimalistic else "")


def build(arch, *, alpha=1.0, minimalistic=False, input_shape=(224, 224), conventions=KERAS):
    return registry.get(arch).build(
        alpha=alpha, input_shape=input_shape, conventions=conventions, minimalistic=minimalistic
    )


def weighted_names(model) -> list[str]:
    return [layer.name for layer in model.layers if layer.weights]


# Keras Applications' counts (Keras 3.15, include_top=True, 1000 classes, BatchNorm statistics
# included), as model.count_params() reports them.
@pytest.mark.parametrize(
    "arch, alpha, minimalistic, expected",
    [
        ("mobilenet_v1", 1.0, False, 4_253_864),
        ("mobilenet_v2", 1.0, False, 3_538_984),
        ("mobilenet_v2", 1.4, False, 6_156_712),
        ("mobilenet_v3_large", 1.0, False, 5_507_432),
        ("mobilenet_v3_small", 1.0, False, 2_554_968),
        ("mobilenet_v3_small", 1.0, True, 2_056_848),
    ],
)
def test_parameter_count_equals_keras(arch, alpha, minimalistic, expected):
    model = build(arch, alpha=alpha, minimalistic=minimalistic)

    assert model.count_params() == expected
    assert model.output_shape == (None, 1000)


@pytest.mark.parametrize("variant", VARIANTS, ids=variant_id)
def test_every_variant_counts_like_keras(variant):
    arch, alpha, minimalistic = variant
    keras_model = build_keras_application(
        arch, alpha=alpha, minimalistic=minimalistic, input_shape=(64, 64), weights=None
    )

    ours = build(arch, alpha=alpha, minimalistic=minimalistic, input_shape=(64, 64))

    assert ours.count_params() == keras_model.count_params()
    assert len(weighted_names(ours)) == len(weighted_names(keras_model))


def _squeeze_excite_layers(model) -> list[str]:
    return [layer.name for layer in model.layers if "_se_" in layer.name or isinstance(layer, keras.layers.Multiply)]


def _hard_swish_layers(model) -> list[str]:
    return [
        layer.name
        for layer in model.layers
        if isinstance(layer, keras.layers.Activation) and layer.activation is keras.activations.hard_swish
    ]


def _kernel_sizes(model) -> set[tuple[int, int]]:
    return {layer.kernel_size for layer in model.layers if isinstance(layer, keras.layers.DepthwiseConv2D)}


@pytest.mark.parametrize("arch", MINIMALISTIC_ARCHS)
def test_minimalistic_drops_se_hard_swish_and_5x5(arch):
    full = build(arch, input_shape=(96, 96))
    minimal = build(arch, minimalistic=True, input_shape=(96, 96))

    assert _squeeze_excite_layers(full)
    assert _hard_swish_layers(full)
    assert _kernel_sizes(full) == {(3, 3), (5, 5)}
    assert _squeeze_excite_layers(minimal) == []
    assert _hard_swish_layers(minimal) == []
    assert _kernel_sizes(minimal) == {(3, 3)}
    # Same widths everywhere: the projections line up block by block.
    assert [layer.filters for layer in full.layers if layer.name.endswith("_project_conv")] == [
        layer.filters for layer in minimal.layers if layer.name.endswith("_project_conv")
    ]


def test_squeeze_excite_uses_quarter_of_expanded_channels():
    large = build("mobilenet_v3_large")
    small = build("mobilenet_v3_small")

    # Large block 4 expands 24 -> 72; 72 / 4 = 18 rounds up to a multiple of 8.
    assert large.get_layer("block4_expand_conv").filters == 72
    assert large.get_layer("block4_se_reduce").filters == 24
    assert large.get_layer("block4_se_expand").filters == 72
    # Small block 1 has no expansion layer, so its gate squeezes the stem's 16 channels.
    assert "block1_expand_conv" not in [layer.name for layer in small.layers]
    assert small.get_layer("block1_se_reduce").filters == 8
    assert small.get_layer("block1_se_expand").filters == 16


@pytest.mark.parametrize(
    "arch, alpha, head, embedding",
    [
        ("mobilenet_v3_large", 1.0, 960, 1280),
        ("mobilenet_v3_large", 0.75, 720, 1280),
        ("mobilenet_v3_small", 1.0, 576, 1024),
        ("mobilenet_v3_small", 0.75, 432, 1024),
    ],
)
def test_v3_head_widths(arch, alpha, head, embedding):
    model = build(arch, alpha=alpha)

    assert model.get_layer("stem_conv").filters == 16
    assert model.get_layer("head_conv").filters == head
    assert model.get_layer("embedding").units == embedding
    assert model.get_layer("head_conv").output.shape[1:3] == (7, 7)


def test_v1_follows_paper_table():
    model = build("mobilenet_v1", alpha=0.5)
    names = [layer.name for layer in model.layers]

    assert "block13_pw_conv" in names
    assert "block14_dw_conv" not in names
    assert model.get_layer("stem_conv").filters == 16
    assert model.get_layer("block13_pw_conv").filters == 512
    assert model.get_layer("block13_pw_conv").output.shape[1:] == (7, 7, 512)
    assert not [layer for layer in model.layers if isinstance(layer, keras.layers.Add)]


def test_v1_pads_odd_sides_like_keras():
    # 100x120 gives a 25x30 map before block 4, so only the width needs a padded column.
    model = build("mobilenet_v1", input_shape=(100, 120))
    pads = [layer for layer in model.layers if isinstance(layer, keras.layers.ZeroPadding2D)]

    assert [layer.name for layer in pads] == ["block4_dw_pad", "block6_dw_pad", "block12_dw_pad"]
    assert model.get_layer("block4_dw_pad").padding == ((0, 0), (0, 1))
    # Keras' V1 gives n // 2 on an odd side, where SAME would give n // 2 + 1.
    assert model.get_layer("block4_dw_conv").output.shape[1:3] == (12, 15)
    assert model.get_layer("block13_pw_conv").output.shape[1:3] == (3, 3)


@pytest.mark.parametrize("arch", list(registry.ARCHITECTURES))
@pytest.mark.parametrize("conventions", [KERAS, TORCHVISION], ids=lambda c: c.name)
def test_layer_names_do_not_depend_on_resolution(arch, conventions):
    reference = build(arch, conventions=conventions)

    for input_shape in ((97, 131), (32, 32)):
        other = build(arch, input_shape=input_shape, conventions=conventions)
        assert weighted_names(other) == weighted_names(reference), input_shape


@pytest.mark.parametrize("arch", list(registry.ARCHITECTURES))
def test_keras_conventions_add_no_padding_at_224(arch):
    model = build(arch)

    assert not [layer for layer in model.layers if isinstance(layer, keras.layers.ZeroPadding2D)]
    assert model.get_layer("stem_bn").epsilon == 1e-3
    assert model.layers[-1].name == "probabilities"


def test_registry_variants_cover_every_row():
    expected = sum(len(arch.alphas) * (2 if arch.has_minimalistic else 1) for arch in registry.ARCHITECTURES.values())

    assert len(VARIANTS) == expected
    assert len(set(VARIANTS)) == expected
    assert ("mobilenet_v3_small", 0.75, True) in VARIANTS
    assert ("mobilenet_v2", 1.0, True) not in VARIANTS
    assert {arch for arch, _, _ in VARIANTS} == set(registry.ARCHITECTURES)


def test_minimalistic_rejected_without_variant():
    with pytest.raises(ValueError, match="mobilenet_v2 has no minimalistic variant"):
        build("mobilenet_v2", minimalistic=True)


@pytest.mark.parametrize(
    "arch, alpha, input_shape, message",
    [
        ("mobilenet_v1", 0.35, (224, 224), "alpha=0.35 is not a MobileNetV1 width"),
        ("mobilenet_v3_large", 0.5, (224, 224), "alpha=0.5 is not a mobilenet_v3_large width"),
        ("mobilenet_v3_small", 1.0, (31, 224), r"input_shape=\(31, 224\) is too small"),
        ("mobilenet_v1", 1.0, (224, 16), r"input_shape=\(224, 16\) is too small"),
    ],
)
def test_builders_reject_invalid_options(arch, alpha, input_shape, message):
    with pytest.raises(ValueError, match=message):
        build(arch, alpha=alpha, input_shape=input_shape)
