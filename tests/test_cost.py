"""The cost model: separable-convolution formulas, per-layer MACs of every builder, `info`."""

from __future__ import annotations

import functools
import json
from fractions import Fraction

import keras
import pytest
from click.testing import CliRunner

from mobile_export.cli import main
from mobile_export.models import cost, mobilenet_v2, registry
from mobile_export.models import layers as blocks
from mobile_export.models.conventions import KERAS, TORCHVISION

# ImageNet Mult-Adds in millions, as reported by MobileNetV1 (arXiv:1704.04861), MobileNetV2
# (arXiv:1801.04381) and MobileNetV3 (arXiv:1905.02244).
# Columns: architecture, alpha, resolution, minimalistic, millions of multiply-adds.
PAPER_MMACS = [
    ("mobilenet_v1", 1.0, 224, False, 569),
    ("mobilenet_v1", 0.75, 224, False, 325),
    ("mobilenet_v1", 0.5, 224, False, 149),
    ("mobilenet_v1", 0.25, 224, False, 41),
    ("mobilenet_v1", 1.0, 192, False, 418),
    ("mobilenet_v1", 1.0, 160, False, 290),
    ("mobilenet_v1", 1.0, 128, False, 186),
    ("mobilenet_v2", 1.0, 224, False, 300),
    ("mobilenet_v2", 1.4, 224, False, 585),
    ("mobilenet_v3_large", 1.0, 224, False, 219),
    ("mobilenet_v3_large", 0.75, 224, False, 155),
    ("mobilenet_v3_large", 1.0, 224, True, 209),
    ("mobilenet_v3_small", 1.0, 224, False, 56),
    ("mobilenet_v3_small", 0.75, 224, False, 44),
]
# The papers print whole millions. Our builders land at most 1.4% away (V3-Small 0.75: 43.4M
# against 44M), while a missing or doubled block would move a total by several percent.
PAPER_RTOL = 0.02


def _when_registered(rows):
    """Wrap each row in ``pytest.param``, skipped until its architecture is in the registry."""
    return [
        pytest.param(
            *row,
            marks=pytest.mark.skipif(
                row[0] not in registry.ARCHITECTURES, reason=f"{row[0]} has no builder in the registry yet"
            ),
            id=f"{row[0]}-{row[1]:g}-{row[2]}{'-minimalistic' if row[3] else ''}",
        )
        for row in rows
    ]


PAPER_ROWS = _when_registered(PAPER_MMACS)
SEPARABLE_ROWS = _when_registered(
    [(arch, 1.0, 224, False) for arch in ("mobilenet_v1", "mobilenet_v2", "mobilenet_v3_large", "mobilenet_v3_small")]
)


@functools.cache
def _built(arch: str, alpha: float, height: int, width: int, minimalistic: bool = False):
    """Build once per variant with torchvision conventions, whose padding layers must cost 0."""
    options = {"minimalistic": True} if minimalistic else {}
    model = registry.get(arch).build(
        alpha=alpha, input_shape=(height, width), conventions=TORCHVISION, **options
    )
    return model, cost.layer_costs(model)


def _by_name(costs):
    return {row.name: row for row in costs}


def _v2_macs(alpha: float, height: int, width: int, num_classes: int = 1000) -> int:
    """Count MobileNetV2's multiply-adds from its stage table, without looking at the model."""

    def stride2(side: int) -> int:
        return (side + 1) // 2

    channels = blocks.make_divisible(mobilenet_v2.STEM_CHANNELS * alpha)
    height, width = stride2(height), stride2(width)
    macs = 3 * 3 * 3 * channels * height * width

    for stage in mobilenet_v2.STAGES:
        out_channels = blocks.make_divisible(stage.channels * alpha)
        for repeat in range(stage.repeats):
            expanded = channels * stage.expansion
            if stage.expansion != 1:
                macs += channels * expanded * height * width
            if repeat == 0 and stage.stride == 2:
                height, width = stride2(height), stride2(width)
            macs += 3 * 3 * expanded * height * width
            macs += expanded * out_channels * height * width
            channels = out_channels

    head = blocks.make_divisible(mobilenet_v2.HEAD_CHANNELS * alpha) if alpha > 1 else mobilenet_v2.HEAD_CHANNELS
    macs += channels * head * height * width
    macs += head * num_classes
    return macs


def test_formulas_worked_example():
    # 5 input channels, a 10x10 output, 3x3 kernels, 64 output channels.
    assert cost.standard_cost(3, 5, 64, 10) == 288_000
    assert cost.depthwise_cost(3, 5, 10) == 4_500
    assert cost.pointwise_cost(5, 64, 10) == 32_000
    assert cost.separable_cost(3, 5, 64, 10) == 36_500
    assert Fraction(36_500, 288_000) == Fraction(1, 64) + Fraction(1, 9)


def test_formulas_rectangular_sizes():
    assert cost.standard_cost((3, 3), 5, 64, (10, 10)) == cost.standard_cost(3, 5, 64, 10)
    assert cost.standard_cost(3, 5, 64, (5, 20)) == cost.standard_cost(3, 5, 64, 10)
    assert cost.separable_cost((1, 5), 8, 16, (4, 6)) == 5 * 8 * 24 + 8 * 16 * 24


@pytest.mark.parametrize(("arch", "alpha", "resolution", "minimalistic", "paper_mmacs"), PAPER_ROWS)
def test_macs_match_papers(arch, alpha, resolution, minimalistic, paper_mmacs):
    _, costs = _built(arch, alpha, resolution, resolution, minimalistic)

    measured = cost.totals(costs).macs / 1e6

    assert measured == pytest.approx(paper_mmacs, rel=PAPER_RTOL)


@pytest.mark.parametrize(("arch", "alpha", "resolution", "minimalistic", "paper_mmacs"), PAPER_ROWS)
def test_params_total_matches_keras(arch, alpha, resolution, minimalistic, paper_mmacs):
    model, costs = _built(arch, alpha, resolution, resolution, minimalistic)

    assert cost.totals(costs).params == model.count_params()


@pytest.mark.parametrize(("alpha", "height", "width"), [(1.0, 224, 224), (1.4, 224, 224), (0.35, 96, 160)])
def test_v2_macs_match_stage_table(alpha, height, width):
    _, costs = _built("mobilenet_v2", alpha, height, width)

    assert cost.totals(costs).macs == _v2_macs(alpha, height, width)


def test_v2_macs_same_for_both_conventions():
    _, torchvision_costs = _built("mobilenet_v2", 1.0, 224, 224)
    keras_model = registry.get("mobilenet_v2").build(alpha=1.0, input_shape=(224, 224), conventions=KERAS)

    keras_costs = cost.layer_costs(keras_model)

    assert cost.totals(keras_costs).macs == cost.totals(torchvision_costs).macs
    assert not [row.name for row in keras_costs if row.name.endswith("_pad")]


def test_v2_layer_kinds():
    _, costs = _built("mobilenet_v2", 1.0, 224, 224)
    rows = _by_name(costs)

    assert rows["stem_conv"].kind == "conv"
    assert rows["block1_dw_conv"].kind == "depthwise"
    assert rows["block2_expand_conv"].kind == "pointwise"
    assert rows["block2_project_conv"].kind == "pointwise"
    assert rows["head_conv"].kind == "pointwise"
    assert rows["logits"].kind == "dense"
    assert rows["pool"].kind == "pool"
    assert rows["block3_add"].kind == "add"
    assert rows["block3_add"].input_shapes == ((56, 56, 24), (56, 56, 24))
    assert rows["stem_relu6"].kind == "activation"
    assert rows["stem_bn"].kind == "other"
    assert "pixels" not in rows
    assert {row.kind for row in costs} <= set(cost.KINDS)


def test_v2_layer_macs_and_shapes():
    _, costs = _built("mobilenet_v2", 1.0, 224, 224)
    rows = _by_name(costs)

    assert rows["stem_conv"].input_shape == (226, 226, 3)
    assert rows["stem_conv"].output_shape == (112, 112, 32)
    assert rows["stem_conv"].macs == 3 * 3 * 3 * 32 * 112 * 112
    assert rows["block2_dw_conv"].macs == 3 * 3 * 96 * 56 * 56
    assert rows["block2_project_conv"].macs == 96 * 24 * 56 * 56
    assert rows["logits"].macs == 1280 * 1000
    assert rows["logits"].params == 1280 * 1000 + 1000
    assert rows["stem_bn"].params == 4 * 32


def test_padding_and_elementwise_rows_cost_nothing():
    _, costs = _built("mobilenet_v2", 1.0, 224, 224)
    padding = [row for row in costs if row.name.endswith("_pad")]

    assert padding
    assert all(row.macs == 0 for row in padding)
    for row in costs:
        if row.kind not in cost.COMPUTE_KINDS:
            assert row.macs == 0, row.name


@pytest.mark.parametrize(("arch", "alpha", "resolution", "minimalistic"), SEPARABLE_ROWS)
def test_separable_ratio_every_block(arch, alpha, resolution, minimalistic):
    _, costs = _built(arch, alpha, resolution, resolution, minimalistic)
    rows = _by_name(costs)

    pairs = cost.separable_comparison(costs)

    assert len(pairs) == sum(row.kind == "depthwise" for row in costs)
    for pair in pairs:
        assert pair.ratio == pytest.approx(1 / pair.n + 1 / (pair.dk[0] * pair.dk[1]), rel=1e-12), pair.block
        assert pair.ratio == pytest.approx(pair.expected_ratio, rel=1e-12), pair.block
        assert pair.separable_macs == rows[pair.depthwise].macs + rows[pair.pointwise].macs, pair.block
        assert pair.standard_macs == cost.standard_cost(pair.dk, pair.m, pair.n, pair.df), pair.block


def test_v2_separable_pairs():
    _, costs = _built("mobilenet_v2", 1.0, 224, 224)

    pairs = cost.separable_comparison(costs)

    assert [pair.block for pair in pairs] == [f"block{index}" for index in range(1, 18)]
    first = pairs[0]
    assert (first.depthwise, first.pointwise) == ("block1_dw_conv", "block1_project_conv")
    assert (first.dk, first.m, first.n, first.df) == ((3, 3), 32, 16, (112, 112))
    last = pairs[-1]
    assert (last.dk, last.m, last.n, last.df) == ((3, 3), 960, 320, (7, 7))


@pytest.mark.parametrize(
    "arch",
    [
        pytest.param(
            arch,
            marks=pytest.mark.skipif(arch not in registry.ARCHITECTURES, reason=f"{arch} has no builder yet"),
        )
        for arch in ("mobilenet_v3_large", "mobilenet_v3_small")
    ],
)
def test_v3_squeeze_excite_rows(arch):
    _, costs = _built(arch, 1.0, 224, 224)

    squeeze_excite = [row for row in costs if row.kind == "squeeze-excite"]

    assert squeeze_excite
    assert all(row.input_shape[:2] == (1, 1) for row in squeeze_excite)
    assert all(row.macs == row.input_shape[-1] * row.output_shape[-1] for row in squeeze_excite)
    assert cost.totals(costs).macs_by_kind["squeeze-excite"] == sum(row.macs for row in squeeze_excite)


def test_squeeze_excite_found_without_names():
    pixels = keras.Input((8, 8, 16))
    features = keras.layers.DepthwiseConv2D(3, padding="same", name="filter")(pixels)
    gate = keras.layers.GlobalAveragePooling2D(keepdims=True, name="squeeze")(features)
    gate = keras.layers.Conv2D(4, 1, activation="relu", name="gate_down")(gate)
    gate = keras.layers.Conv2D(16, 1, name="gate_up")(gate)
    gate = keras.layers.Activation("hard_sigmoid", name="gate")(gate)
    scaled = keras.layers.Multiply(name="scale")([features, gate])
    projected = keras.layers.Conv2D(24, 1, name="project")(scaled)
    pooled = keras.layers.GlobalAveragePooling2D(keepdims=True, name="pool")(projected)
    logits = keras.layers.Conv2D(10, 1, name="classifier")(pooled)
    model = keras.Model(pixels, logits)

    rows = _by_name(cost.layer_costs(model))

    assert rows["gate_down"].kind == "squeeze-excite"
    assert rows["gate_up"].kind == "squeeze-excite"
    assert rows["scale"].kind == "other"
    assert rows["scale"].macs == 0
    assert rows["project"].kind == "pointwise"
    assert rows["classifier"].kind == "pointwise"
    pairs = cost.separable_comparison(list(rows.values()))
    assert [(pair.depthwise, pair.pointwise) for pair in pairs] == [("filter", "project")]


def test_grouped_strided_and_multiplier_layers():
    pixels = keras.Input((8, 8, 4))
    x = keras.layers.Conv2D(6, 3, strides=2, padding="same", groups=2, use_bias=False, name="grouped")(pixels)
    x = keras.layers.DepthwiseConv2D(3, depth_multiplier=2, padding="valid", name="doubled")(x)
    x = keras.layers.Dense(5, name="per_position")(x)
    model = keras.Model(pixels, x)

    rows = _by_name(cost.layer_costs(model))

    assert rows["grouped"].output_shape == (4, 4, 6)
    assert rows["grouped"].kind == "conv"
    assert rows["grouped"].macs == 3 * 3 * (4 // 2) * 6 * 4 * 4
    assert rows["doubled"].output_shape == (2, 2, 12)
    assert rows["doubled"].macs == 3 * 3 * 12 * 2 * 2
    assert rows["per_position"].kind == "dense"
    assert rows["per_position"].macs == 2 * 2 * 12 * 5
    assert cost.totals(rows.values()).params == model.count_params()


def test_uncounted_layer_raises():
    pixels = keras.Input((8, 8, 4))
    model = keras.Model(pixels, keras.layers.SeparableConv2D(8, 3, name="fused")(pixels))

    with pytest.raises(NotImplementedError, match="'fused'.*SeparableConv2D"):
        cost.layer_costs(model)


def test_unknown_input_size_raises():
    pixels = keras.Input((None, None, 3))
    model = keras.Model(pixels, keras.layers.Conv2D(8, 3, name="stem")(pixels))

    with pytest.raises(ValueError, match="'stem' has an unknown dimension"):
        cost.layer_costs(model)


def test_info_prints_table_and_totals():
    model, costs = _built("mobilenet_v2", 0.35, 96, 96)
    summed = cost.totals(costs)

    result = CliRunner().invoke(main, ["info", "--arch", "mobilenet_v2", "--alpha", "0.35", "--resolution", "96"])

    assert result.exit_code == 0, result.output
    assert f"Total params: {model.count_params():,}" in result.output
    assert f"Total MACs:   {summed.macs:,} ({summed.macs / 1e6:.1f} MMACs)" in result.output
    assert "block1_dw_conv" in result.output
    assert "1/N+1/Dk²" in result.output
    assert "block17" in result.output


def test_info_json_matches_cost_model():
    model, costs = _built("mobilenet_v2", 0.35, 96, 96)

    result = CliRunner().invoke(main, ["info", "--alpha", "0.35", "--resolution", "96", "--json"])

    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["arch"] == "mobilenet_v2"
    assert report["resolution"] == [96, 96]
    assert report["totals"]["macs"] == cost.totals(costs).macs
    assert report["totals"]["macs"] == sum(layer["macs"] for layer in report["layers"])
    assert report["totals"]["params"] == model.count_params()
    assert len(report["layers"]) == len(costs)
    assert len(report["separable"]) == 17
    for pair in report["separable"]:
        assert pair["ratio"] == pytest.approx(pair["expected_ratio"], rel=1e-12)


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        (["--alpha", "0.3"], "0.35, 0.5, 0.75, 1, 1.3, 1.4"),
        (["--resolution", "224x"], "'224x' is not N or HxW"),
        (["--resolution", "16"], "at least 32"),
        (["--arch", "mobilenet_v9"], "mobilenet_v2"),
        (["--minimalistic"], "mobilenet_v2 has no minimalistic variant"),
    ],
)
def test_info_rejects_bad_options(options, expected):
    result = CliRunner().invoke(main, ["info", *options])

    assert result.exit_code == 2, result.output
    assert expected in result.output
