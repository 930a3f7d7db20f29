"""bench: the naive baseline's weight map, delegation analysis, graph rewrites and the comparison table."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from mobile_export.cli import main
from mobile_export.models.conventions import TORCHVISION, Conventions

SMALL = ["--arch", "mobilenet_v2", "--alpha", "0.35", "--resolution", "64", "--weights", "random"]
LOOSE_GATE = ["--min-top1", "0", "--min-top5", "0", "--min-cosine", "-1", "--min-sqnr", "-100"]


def _small_model(conventions: Conventions, arch: str = "mobilenet_v2", alpha: float = 0.35, seed: int = 1):
    """A model at 64 px with random kernels and random BatchNorm statistics."""
    from mobile_export.models import registry
    from mobile_export.models.weights import randomize

    model = registry.get(arch).build(alpha=alpha, input_shape=(64, 64), conventions=conventions, batch_size=1)
    randomize(model, seed=seed)
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if type(layer).__name__ == "BatchNormalization":
            gamma, beta, mean, variance = layer.get_weights()
            layer.set_weights([
                rng.uniform(0.5, 1.5, gamma.shape), rng.normal(0, 0.1, beta.shape),
                rng.normal(0, 0.1, mean.shape), rng.uniform(0.5, 2.0, variance.shape),
            ])
    return model


def _outputs(model, inputs: np.ndarray) -> np.ndarray:
    return np.asarray(model(inputs, training=False))


@pytest.mark.parametrize(("arch", "alpha"), [("mobilenet_v2", 0.35), ("mobilenet_v1", 0.25), ("mobilenet_v3_small", 0.75)])
def test_naive_weight_map_is_exact_where_padding_agrees(arch, alpha):
    from mobile_export.baseline import keras_application_with_our_weights, naive_inputs

    # SAME padding as Keras pads, and a mean of 127.5 so that Keras' zero padding of [-1, 1]
    # inputs is ours' zero padding of normalized inputs: the two models are then one function.
    conventions = Conventions(
        name="test", stride2_padding="same", bn_epsilon=1e-5, mean=(127.5,) * 3, std=TORCHVISION.std, output="logits"
    )
    ours = _small_model(conventions, arch, alpha)
    pixels = np.random.default_rng(0).uniform(0, 255, (2, 64, 64, 3)).astype(np.float32)

    naive = keras_application_with_our_weights(ours, arch=arch, alpha=alpha)

    assert naive.inputs[0].shape[0] is None
    logits = _outputs(ours, pixels)
    np.testing.assert_allclose(_outputs(naive, naive_inputs(pixels, arch)), logits, atol=1e-4 * np.abs(logits).max())


def test_naive_stem_differs_only_on_its_padded_border():
    import keras

    from mobile_export.baseline import keras_application_with_our_weights, naive_inputs

    conventions = Conventions(
        name="test", stride2_padding="same", bn_epsilon=1e-5, mean=TORCHVISION.mean, std=TORCHVISION.std, output="logits"
    )
    ours = _small_model(conventions)
    naive = keras_application_with_our_weights(ours, arch="mobilenet_v2", alpha=0.35)
    pixels = np.random.default_rng(0).uniform(0, 255, (1, 64, 64, 3)).astype(np.float32)

    stem_ours = _outputs(keras.Model(ours.inputs, ours.get_layer("stem_bn").output), pixels)
    stem_naive = _outputs(keras.Model(naive.inputs, naive.get_layer("bn_Conv1").output), naive_inputs(pixels, "mobilenet_v2"))

    # SAME padding on an even input reads padding only for the last row and column.
    np.testing.assert_allclose(stem_naive[:, :-1, :-1], stem_ours[:, :-1, :-1], atol=1e-4)
    assert np.abs(stem_naive[:, -1] - stem_ours[:, -1]).max() > 1e-2


def test_naive_weight_map_rejects_user_models():
    import keras

    from mobile_export.baseline import BaselineError, keras_application_with_our_weights

    inputs = keras.Input((32, 32, 3))
    model = keras.Model(inputs, keras.layers.Conv2D(4, 3)(inputs))

    with pytest.raises(BaselineError, match="no 'normalize' layer"):
        keras_application_with_our_weights(model, arch="mobilenet_v2", alpha=1.0)


def test_undelegated_ops_follow_partition_boundaries():
    from mobile_export.bench import undelegated_ops

    ops = [
        {"name": "QUANTIZE", "inputs": [0], "outputs": [1]},
        {"name": "CONV_2D", "inputs": [1, 7], "outputs": [2]},
        {"name": "ADD", "inputs": [2, 1], "outputs": [3]},
        {"name": "CUSTOM", "inputs": [3], "outputs": [4]},
        {"name": "FULLY_CONNECTED", "inputs": [4, 8, -1], "outputs": [5]},
        {"name": "DELEGATE", "inputs": [1], "outputs": [3]},
        {"name": "DELEGATE", "inputs": [4], "outputs": [5]},
    ]

    assert undelegated_ops(ops) == ["QUANTIZE", "CUSTOM"]


def test_fold_normalization_scale_is_exact_on_photos(torchvision_v2, validation_photos):
    from mobile_export.models.export_graph import fold_normalization_scale

    folded = fold_normalization_scale(torchvision_v2)

    pixels = validation_photos.pixels[:4].astype(np.float32)
    expected = np.concatenate([_outputs(torchvision_v2, image[None]) for image in pixels])
    actual = np.concatenate([_outputs(folded, image[None]) for image in pixels])
    # float32 rounding of (x - mean) / std * W against (x - mean) * (W / std): about 1e-6 of a
    # logit, so 1.1e-5 on a logit of 11.6 for these photos.
    np.testing.assert_allclose(actual, expected, rtol=1e-6, atol=1e-5)
    assert [layer.name for layer in folded.layers] == [layer.name for layer in torchvision_v2.layers]


@pytest.mark.slow
def test_fold_normalization_scale_drops_the_mul():
    from mobile_export._tf import import_tensorflow
    from mobile_export.models.export_graph import fold_normalization_scale

    tf = import_tensorflow()
    from ai_edge_litert.interpreter import Interpreter

    folded = fold_normalization_scale(_small_model(TORCHVISION))

    interpreter = Interpreter(model_content=tf.lite.TFLiteConverter.from_keras_model(folded).convert())
    names = [op["op_name"] for op in interpreter._get_ops_details()]

    # Unfolded, the graph starts SUB, MUL, PAD.
    assert names[:3] == ["SUB", "PAD", "CONV_2D"]
    assert "MUL" not in names


def test_fold_normalization_scale_rejects_other_graphs():
    import keras

    from mobile_export.models.export_graph import GraphRewriteError, fold_normalization_scale

    inputs = keras.Input((32, 32, 3))
    normalized = keras.layers.Normalization(mean=[1.0, 2.0, 3.0], variance=[4.0, 4.0, 4.0], name="normalize")(inputs)
    model = keras.Model(inputs, keras.layers.DepthwiseConv2D(3, use_bias=False)(normalized))

    with pytest.raises(GraphRewriteError, match="needs a bias-free Conv2D"):
        fold_normalization_scale(model)


@pytest.fixture(scope="module")
def naive_bench(tmp_path_factory):
    """A small fp32 and int8 build, benchmarked with the naive baseline through the CLI."""
    folder = tmp_path_factory.mktemp("bench")
    out, results = folder / "out", folder / "results"
    runner = CliRunner()
    built = runner.invoke(
        main,
        ["build", "--out", str(out), *SMALL, "--quant", "fp32", "--quant", "int8", "--calibration-samples", "8",
         "--no-diagnose", *LOOSE_GATE],
        catch_exceptions=False,
    )
    assert built.exit_code == 0, built.output
    result = runner.invoke(
        main,
        ["bench", str(out / "tflite-fp32"), str(out / "tflite-int8"), "--baseline", "naive", "--runs", "5",
         "--warmup", "1", "--rounds", "1", "--threads", "1", "--out", str(results)],
        catch_exceptions=False,
    )
    return result, results


@pytest.mark.slow
def test_bench_naive_rows_and_goals(naive_bench):
    result, results = naive_bench

    assert result.exit_code == 0, result.output
    rows = json.loads((results / "bench.json").read_text())["rows"]
    by_name = {(row["origin"], row["mode"]): row for row in rows}
    assert sorted(by_name) == [("naive", "fp32"), ("naive", "int8"), ("ours", "fp32"), ("ours", "int8")]
    ours_fp32, ours_int8 = by_name["ours", "fp32"], by_name["ours", "int8"]
    naive_fp32 = by_name["naive", "fp32"]
    # Keras Applications leaves the batch dimension unset, which the plain converter keeps.
    assert naive_fp32["dynamic_shapes"] is True
    assert ours_fp32["dynamic_shapes"] is False
    # Keras' bottom-right padding fuses into SAME convolutions; ours pads every side.
    assert naive_fp32["op_counts"].get("PAD", 0) == 0
    assert ours_fp32["op_counts"]["PAD"] == 5
    # fp32 has the normalization's division folded into the stem; int8 keeps it.
    assert ours_fp32["op_counts"]["SUB"] == 1
    assert "MUL" not in ours_fp32["op_counts"]
    assert ours_int8["op_counts"]["MUL"] == 1
    # uint8 input and output: LiteRT's XNNPACK delegate does not take the uint8 <-> int8 QUANTIZE ops.
    assert ours_int8["not_delegated"] == ["QUANTIZE", "QUANTIZE"]
    assert ours_fp32["not_delegated"] == []
    assert ours_int8["vs_naive"]["export"] == "naive-int8"
    assert ours_int8["vs_naive"]["size_ratio"] == pytest.approx(ours_int8["size_mb"] / by_name["naive", "int8"]["size_mb"])
    goals = {goal["goal"]: goal for goal in ours_fp32["goals"]}
    assert goals["no dynamic shapes"]["met"] is True
    assert "no larger than naive, metadata aside" in goals
    assert any(goal["goal"].startswith("int8 at most") for goal in ours_int8["goals"])


@pytest.mark.slow
def test_bench_writes_table_and_figure(naive_bench):
    result, results = naive_bench

    assert result.exit_code == 0, result.output
    table = (results / "bench.md").read_text()
    assert "| tflite-int8 | naive-int8 |" in table
    assert "slightly different function" in table
    assert (results / "bench.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    naive_parity = json.loads((results / "naive-int8" / "parity.json").read_text())
    assert naive_parity["images"] == 13
    assert naive_parity["reference"] == "Keras Applications float model with our weights"
