"""int8 rescue: least-error activation ranges, and the float-block search when the gate fails."""

import json

import numpy as np
import pytest

from mobile_export import pipeline
from mobile_export.convert.ranges import best_range, quantization_mse
from mobile_export.validate import rescue


def test_quantization_mse_matches_a_direct_computation():
    values = np.random.default_rng(0).normal(0.0, 1.0, 5000)
    low, high = -2.5, 3.0
    scale = (high - low) / 255
    zero_point = round(-low / scale)
    direct = [(min(max(round(v / scale) + zero_point, 0), 255) - zero_point) * scale for v in values]

    assert quantization_mse(values, low, high) == pytest.approx(np.mean((np.array(direct) - values) ** 2))


def test_best_range_clips_a_rare_outlier():
    # One spike in 400,000 costs less clipped than the step its range would force on every value.
    rng = np.random.default_rng(1)
    values = np.concatenate([np.abs(rng.normal(0.0, 0.5, 400_000)), [40.0]])

    low, high = best_range(values, 0.0, 40.0)

    assert low == 0.0
    assert high < 30.0
    assert quantization_mse(values, low, high) < 0.8 * quantization_mse(values, 0.0, 40.0)


def test_best_range_keeps_a_tight_range():
    values = np.random.default_rng(2).uniform(-1.0, 1.0, 20000)

    low, high = best_range(values, -1.0, 1.0)

    assert -1.0 <= low < 0.0 < high <= 1.0
    # Uniform data has no tail worth clipping.
    assert high > 0.9
    assert low < -0.9


@pytest.mark.parametrize(
    "name, block",
    [
        ("mobilenet_v2_1_224x224_1/block14_expand_relu6_1/Relu6;mobilenet_v2_1_224x224_1/block14_expand_bn_1/x", "block14"),
        ("mobilenet_v2_1_224x224_1/block3_add_1/Add", "block3"),
        ("mobilenet_v2_1_224x224_1/stem_pad_1/Pad", "stem"),
        ("mobilenet_v3_small_1_224x224_1/logits_1/MatMul;mobilenet_v3_small_1_224x224_1/logits_1/BiasAdd", "logits"),
        ("StatefulPartitionedCall_1:0", None),
    ],
)
def test_block_of_reads_the_keras_layer(name, block):
    assert rescue.block_of(name) == block


def test_search_stops_at_the_target():
    ops = [f"m/block{b}_{part}_1/x" for b in (1, 2, 3, 4) for part in ("expand", "project")]
    gain = {"block1": 0.5, "block2": 3.0, "block3": 2.0, "block4": 0.0}

    def measure(float_nodes):  # SQNR grows by each float block's own gain
        return 10.0 + sum(gain[b] for b in {rescue.block_of(n) for n in float_nodes})

    found = rescue.search(ops, measure, shortfall_db=4.0)

    assert found.blocks == ["block2", "block3"]
    assert found.before_db == 10.0
    assert found.after_db == 15.0
    assert found.nodes == [n for n in ops if "block2" in n] + [n for n in ops if "block3" in n]
    assert found.reached


def test_search_stops_at_the_block_budget():
    ops = [f"m/block{b}_project_1/x" for b in range(1, 11)]
    found = rescue.search(ops, lambda nodes: float(len(nodes)), shortfall_db=100.0, max_blocks=3)

    assert len(found.blocks) == 3
    assert not found.reached


@pytest.fixture(scope="module")
def v2_at_128(tmp_path_factory):
    """The real V2 at 128x128: int8 with the rescue forced to search (gate at 30 dB), and plain int8."""
    root = tmp_path_factory.mktemp("rescue")
    options = dict(quant=["int8"], resolution=128, diagnose=False, command=["test"])
    with pytest.raises(pipeline.ParityGateError) as failed:
        pipeline.build(out=root / "rescued", gate_overrides={"min_sqnr_db": 30.0}, **options)
    plain = pipeline.build(out=root / "plain", rescue=False, **options)
    return failed.value.result.exports[0], plain.exports[0]


@pytest.mark.slow
def test_least_error_ranges_beat_the_calibrators_min_max(v2_at_128):
    rescued, plain = v2_at_128
    before = rescued.parity["recipe"]["rescue"]["validation_before"]

    assert plain.parity["recipe"]["activation_ranges"] == "calibrator min/max"
    assert plain.parity["recipe"]["calibration_sqnr_db"] is None
    assert rescued.parity["recipe"]["activation_ranges"] == "least-error clipping"
    assert rescued.parity["recipe"]["ranges_narrowed"] > 30
    scores = rescued.parity["recipe"]["calibration_sqnr_db"]
    assert scores["least_error"] > scores["calibrator"] + 2.0
    assert before["sqnr_db"] > plain.parity["sqnr_db"] + 2.0


@pytest.mark.slow
def test_rescue_reports_float_blocks_and_cost(v2_at_128):
    rescued, _ = v2_at_128
    record = rescued.parity["recipe"]["rescue"]
    manifest = json.loads((rescued.folder / "manifest.json").read_text())

    assert 1 <= len(record["float_blocks"]) <= rescue.MAX_BLOCKS
    assert record["calibration_sqnr_db_after"] > record["calibration_sqnr_db_before"]
    assert rescued.parity["sqnr_db"] > record["validation_before"]["sqnr_db"]
    assert rescued.parity["float_ops"].get("CONV_2D", 0) > 0
    assert record["cost"]["size_bytes_after"] > record["cost"]["size_bytes_before"]
    assert record["cost"]["latency_ms_after"] > 0
    assert manifest["parity"]["passed"] is False
    top1_kept = 13 - rescued.parity["top1_changed"]
    assert f"| rescued | {top1_kept}/13 | {rescued.parity['sqnr_db']:.1f} |" in (rescued.folder / "parity.md").read_text()
