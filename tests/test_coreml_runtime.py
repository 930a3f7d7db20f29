"""The reference Core ML runtime against Keras, coremltools' own decompression, and unknown ops.

Most cases convert one of our small MobileNets with coremltools (random He-normal kernels, BatchNorm
with random scales and statistics measured on the photos) and run the saved ``.mlpackage`` on
three bundled photos. A tiny Keras model covers the weight compression variants, and MIL programs
built in the test cover a classifier and an op the runtime does not support.
"""

import dataclasses
import functools

import keras
import numpy as np
import pytest

from mobile_export.contract import InputContract
from mobile_export.convert.coreml import import_coremltools
from mobile_export.data import bundled_photos, load_folder
from mobile_export.models import registry
from mobile_export.models.conventions import TORCHVISION
from mobile_export.models.weights import randomize
from mobile_export.runtime.coreml import CoreMLProgram, UnsupportedOpError

SIZE = 64
PHOTOS = 3
SEED = 11
ALPHAS = {"mobilenet_v1": 0.25, "mobilenet_v2": 0.35, "mobilenet_v3_small": 0.75, "mobilenet_v3_large": 0.75}
LOGITS = dataclasses.replace(TORCHVISION, output="logits")
# Float32 logits of about 1 to 3. The runtime and Keras sum convolutions in different orders, and
# the largest difference over the four architectures was 4.6e-6 on an x86-64 CPU.
FP32_TOLERANCE = 1e-4
# A float16 program rounds every weight and activation to 11 significant bits (relative error up to
# 2^-11, about 5e-4) through some 50 layers. Against Keras on these photos the float16 programs of
# the four architectures missed by 0.4% to 0.6% of the largest logit (1.2% for V3-large over all
# 13 photos). 2% leaves room for other seeds, while a wrong op misses by about the logit's size.
FP16_RELATIVE_TOLERANCE = 0.02


@functools.cache
def photos() -> np.ndarray:
    return load_folder(bundled_photos("validation"), InputContract(SIZE, SIZE), limit=PHOTOS).pixels


def set_batchnorm(model, pixels: np.ndarray, seed: int) -> None:
    """Draw BatchNorm scales and offsets, then set each BatchNorm's statistics from the photos.

    With Keras' initial statistics (mean 0, variance 1) the photos' activations drift with depth
    until every photo gets nearly the same logits, and a broken op could hide in that. One
    training-mode pass measures each BatchNorm's input, so every layer passes on a signal of about
    unit scale. A quarter of the median variance is added so no channel divides by a near-zero one.
    """
    rng = np.random.default_rng(seed)
    norms = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    probe = keras.Model(model.input, [layer.input for layer in norms])
    features = probe(pixels.astype(np.float32), training=True)
    for layer, feature in zip(norms, features):
        feature = np.asarray(feature)
        gamma, beta, _, _ = layer.get_weights()
        variance = feature.var(axis=(0, 1, 2))
        layer.set_weights(
            [
                rng.uniform(0.5, 1.5, gamma.shape),
                rng.normal(0.0, 0.2, beta.shape),
                feature.mean(axis=(0, 1, 2)),
                variance + 0.25 * np.median(variance),
            ]
        )


@functools.cache
def keras_model(arch: str):
    model = registry.get(arch).build(alpha=ALPHAS[arch], input_shape=(SIZE, SIZE), conventions=LOGITS, batch_size=None)
    randomize(model, seed=SEED)
    set_batchnorm(model, photos(), SEED)
    return model


def keras_logits(arch: str, pixels: np.ndarray) -> np.ndarray:
    return np.asarray(keras_model(arch)(pixels.astype(np.float32), training=False))


def convert(arch: str, path, *, precision: str = "float32", target: str = "iOS16", **image_options):
    """Convert our Keras model to an ML Program at ``path``; ``image_options`` override the ImageType."""
    ct = import_coremltools()
    image = {"scale": 1.0, "bias": [0.0, 0.0, 0.0], "color_layout": ct.colorlayout.RGB} | image_options
    mlmodel = ct.convert(
        keras_model(arch),
        convert_to="mlprogram",
        inputs=[ct.ImageType(shape=(1, SIZE, SIZE, 3), **image)],
        minimum_deployment_target=getattr(ct.target, target),
        compute_precision=ct.precision.FLOAT16 if precision == "float16" else ct.precision.FLOAT32,
    )
    mlmodel.save(str(path))
    return mlmodel


def only_output(program: CoreMLProgram, pixels: np.ndarray) -> np.ndarray:
    (output,) = program.run(pixels).values()
    return output


def max_abs(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a - b).max())


@pytest.fixture(scope="module")
def fp32_package(tmp_path_factory):
    """Return the float32 iOS 16 package of an architecture, converting each one once per module."""
    folder = tmp_path_factory.mktemp("coreml")
    paths = {}

    def package(arch: str):
        if arch not in paths:
            paths[arch] = folder / f"{arch}.mlpackage"
            convert(arch, paths[arch])
        return paths[arch]

    return package


@pytest.fixture(scope="module")
def v2_fp16(tmp_path_factory):
    """A float16 V2 program (iOS 16) and its coremltools model, for precision and compression."""
    path = tmp_path_factory.mktemp("coreml") / "v2_fp16.mlpackage"
    return path, convert("mobilenet_v2", path, precision="float16")


@pytest.mark.parametrize("arch", list(ALPHAS))
def test_fp32_program_matches_keras(fp32_package, arch):
    path = fp32_package(arch)
    pixels = photos()
    expected = keras_logits(arch, pixels)

    program = CoreMLProgram(path)
    outputs = program.run(pixels)

    assert list(outputs) == program.outputs
    (logits,) = outputs.values()
    assert logits.shape == expected.shape == (PHOTOS, 1000)
    assert logits.dtype == np.float32
    assert max_abs(logits, expected) <= FP32_TOLERANCE
    # The photos must differ by far more than the tolerance, or the test could not fail.
    gaps = [max_abs(expected[i], expected[j]) for i in range(PHOTOS) for j in range(i + 1, PHOTOS)]
    assert min(gaps) > 100 * FP32_TOLERANCE


def test_program_describes_image_input(fp32_package):
    program = CoreMLProgram(fp32_package("mobilenet_v1"))

    assert program.inputs == {
        "pixels": {
            "kind": "image",
            "shape": [1, 3, SIZE, SIZE],
            "layout": "NCHW",
            "dtype": "float32",
            "color": "RGB",
            "height": SIZE,
            "width": SIZE,
        }
    }
    assert program.ops["conv"] == 27
    assert program.classes is None


def tiny_model():
    """A convolution, a depthwise and a pointwise one, pooling and a dense layer: converts in seconds."""
    keras.utils.set_random_seed(SEED)
    inputs = keras.Input((SIZE, SIZE, 3), batch_size=1, name="pixels")
    features = keras.layers.Conv2D(16, 3, strides=2, padding="same", activation="relu")(inputs)
    features = keras.layers.DepthwiseConv2D(3, padding="same", activation="relu")(features)
    features = keras.layers.Conv2D(32, 1, activation="relu")(features)
    outputs = keras.layers.Dense(10)(keras.layers.GlobalAveragePooling2D()(features))
    return keras.Model(inputs, outputs)


def test_image_scale_bias_and_bgr(tmp_path):
    """A BGR image with scale and bias: the program receives ``bgr * scale + bias`` per channel."""
    ct = import_coremltools()
    model = tiny_model()
    scale, bias = 0.5, [10.0, -20.0, 30.0]  # bias in the program's channel order, B, G, R
    path = tmp_path / "bgr.mlpackage"
    ct.convert(
        model,
        convert_to="mlprogram",
        inputs=[ct.ImageType(shape=(1, SIZE, SIZE, 3), scale=scale, bias=bias, color_layout=ct.colorlayout.BGR)],
        minimum_deployment_target=ct.target.iOS16,
        compute_precision=ct.precision.FLOAT32,
    ).save(str(path))
    pixels = photos()
    bgr = pixels[..., ::-1].astype(np.float32)

    program = CoreMLProgram(path)
    logits = only_output(program, pixels)

    assert program.inputs["pixels"]["color"] == "BGR"
    assert program.ops["mul"] == 1  # the scale
    assert max_abs(logits, np.asarray(model(bgr * scale + np.array(bias, np.float32)))) <= FP32_TOLERANCE
    assert max_abs(logits, np.asarray(model(pixels.astype(np.float32) * scale))) > 100 * FP32_TOLERANCE


def rms(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.sqrt(np.mean((a - b) ** 2)))


def test_fp16_program_precisions(v2_fp16):
    path, _ = v2_fp16
    pixels = photos()
    expected = keras_logits("mobilenet_v2", pixels)
    scale = float(np.abs(expected).max())

    program = CoreMLProgram(path)
    as_model = only_output(program, pixels)
    as_fp32 = only_output(CoreMLProgram(path, precision="fp32"), pixels)
    as_fp16 = only_output(CoreMLProgram(path, precision="fp16"), pixels)

    assert program.ops["cast"] == 1  # the input to float16; an iOS 16 program keeps a float16 output
    assert max_abs(as_model, expected) <= FP16_RELATIVE_TOLERANCE * scale
    assert (np.argmax(as_model, axis=1) == np.argmax(expected, axis=1)).all()
    # The program already computes in float16 from its input cast to its output.
    np.testing.assert_array_equal(as_fp16, as_model)
    np.testing.assert_array_equal(as_model, as_model.astype(np.float16).astype(np.float32))
    # Float32 compute leaves only the weights' float16 rounding: measured 1.4e-3 RMS against 1.8e-3.
    # NOTE: this holds for V1 and V2 only. In V3 the float16 constant 1/6 of hard-swish and
    # hard-sigmoid (0.16663) shrinks every saturated gate, and float16 rounding of the activations
    # brings 6 * 0.16663 back to exactly 1, so there float32 compute ends up further from Keras.
    assert rms(as_fp32, expected) < rms(as_model, expected)
    assert max_abs(as_fp32, expected) > FP32_TOLERANCE  # the float16 weights still show


def test_fp16_precision_rounds_fp32_program(fp32_package):
    path = fp32_package("mobilenet_v2")
    pixels = photos()
    expected = keras_logits("mobilenet_v2", pixels)

    as_fp16 = only_output(CoreMLProgram(path, precision="fp16"), pixels)

    error = max_abs(as_fp16, expected)
    assert FP32_TOLERANCE < error <= FP16_RELATIVE_TOLERANCE * float(np.abs(expected).max())


def compress(mlmodel, kind: str, nbits: int, **options):
    """Compress every weight of ``mlmodel``: ``kind`` is ``"linear"`` (int weights) or ``"palettize"``.

    Most cases pick uniform palettes, because k-means takes seconds per MobileNet tensor, and the
    constexpr op and its index layout are the same whichever way the palette was found.
    """
    import coremltools.optimize.coreml as cto

    if kind == "linear":
        config = cto.OpLinearQuantizerConfig(dtype=f"int{nbits}", weight_threshold=0, **options)
        return cto.linear_quantize_weights(mlmodel, cto.OptimizationConfig(global_config=config))
    config = cto.OpPalettizerConfig(nbits=nbits, weight_threshold=0, **options)
    return cto.palettize_weights(mlmodel, cto.OptimizationConfig(global_config=config))


def assert_runs_like_decompressed(tmp_path, compressed, constexpr_op: str, pixels: np.ndarray) -> None:
    """Run the compressed package and coremltools' own decompression of it; they must agree."""
    import coremltools.optimize.coreml as cto

    compressed.save(str(tmp_path / "compressed.mlpackage"))
    cto.decompress_weights(compressed).save(str(tmp_path / "decompressed.mlpackage"))

    program = CoreMLProgram(tmp_path / "compressed.mlpackage")
    reference = CoreMLProgram(tmp_path / "decompressed.mlpackage")

    assert program.ops[constexpr_op] >= 2  # per-block int4 skips weights with 3 or 1 input channels
    assert reference.ops[constexpr_op] == 0
    # Identical float16 weights give identical results; a misread index or scale would not.
    np.testing.assert_allclose(only_output(program, pixels), only_output(reference, pixels), rtol=0, atol=1e-6)


@pytest.mark.parametrize(
    ("kind", "nbits", "options", "constexpr_op"),
    [
        ("linear", 8, {"mode": "linear_symmetric", "granularity": "per_channel"}, "constexpr_affine_dequantize"),
        ("palettize", 6, {"mode": "uniform"}, "constexpr_lut_to_dense"),  # 6-bit indices straddle bytes
    ],
)
def test_compressed_mobilenet(tmp_path, v2_fp16, kind, nbits, options, constexpr_op):
    _, mlmodel = v2_fp16
    assert_runs_like_decompressed(tmp_path, compress(mlmodel, kind, nbits, **options), constexpr_op, photos())


def convert_tiny(target: str):
    """Convert :func:`tiny_model` to a float16 ML Program for ``target``, in memory."""
    ct = import_coremltools()
    return ct.convert(
        tiny_model(),
        convert_to="mlprogram",
        inputs=[ct.ImageType(shape=(1, SIZE, SIZE, 3), scale=1.0, bias=[0.0, 0.0, 0.0])],
        minimum_deployment_target=getattr(ct.target, target),
        compute_precision=ct.precision.FLOAT16,
    )


@pytest.fixture(scope="module")
def tiny_ios16():
    return convert_tiny("iOS16")


@pytest.fixture(scope="module")
def tiny_ios18():
    return convert_tiny("iOS18")


@pytest.mark.parametrize(
    ("kind", "nbits", "options"),
    [
        ("linear", 8, {"mode": "linear", "granularity": "per_tensor"}),  # with a zero point
        ("palettize", 4, {"mode": "uniform"}),
        ("palettize", 2, {"mode": "uniform"}),
    ],
)
def test_ios16_compressed_weights(tmp_path, tiny_ios16, kind, nbits, options):
    constexpr_op = "constexpr_affine_dequantize" if kind == "linear" else "constexpr_lut_to_dense"
    assert_runs_like_decompressed(tmp_path, compress(tiny_ios16, kind, nbits, **options), constexpr_op, photos())


@pytest.mark.parametrize(
    ("kind", "nbits", "options"),
    [
        ("linear", 8, {"mode": "linear_symmetric", "granularity": "per_channel"}),
        ("linear", 4, {"mode": "linear", "granularity": "per_block", "block_size": 8}),  # int4 with offsets
        ("palettize", 6, {"mode": "uniform"}),
        ("palettize", 4, {"mode": "uniform", "granularity": "per_grouped_channel", "group_size": 8}),
        ("palettize", 2, {"mode": "kmeans", "cluster_dim": 2}),  # 2-element vectors per index
    ],
)
def test_ios18_compressed_weights(tmp_path, tiny_ios18, kind, nbits, options):
    constexpr_op = "constexpr_blockwise_shift_scale" if kind == "linear" else "constexpr_lut_to_dense"
    assert_runs_like_decompressed(tmp_path, compress(tiny_ios18, kind, nbits, **options), constexpr_op, photos())


def test_compressed_program_stays_near_keras(tmp_path, v2_fp16):
    _, mlmodel = v2_fp16
    path = tmp_path / "int8.mlpackage"
    compress(mlmodel, "linear", 8, mode="linear_symmetric", granularity="per_channel").save(str(path))
    pixels = photos()
    expected = keras_logits("mobilenet_v2", pixels)

    logits = only_output(CoreMLProgram(path), pixels)

    # Measured 6% of the largest logit with these random weights.
    assert max_abs(logits, expected) <= 0.15 * float(np.abs(expected).max())
    assert (np.argmax(logits, axis=1) == np.argmax(expected, axis=1)).all()


def test_classifier_with_tensor_input(tmp_path):
    """A classifier over the mean colour of an NHWC tensor: its probabilities come back, its label not."""
    ct = import_coremltools()
    from coremltools.converters.mil import Builder as mb

    @mb.program(input_specs=[mb.TensorSpec(shape=(1, 8, 8, 3))], opset_version=ct.target.iOS16)
    def program(pixels):
        means = mb.reduce_mean(x=pixels, axes=[1, 2], keep_dims=False)
        return mb.softmax(x=mb.mul(x=means, y=np.float32(0.05)), axis=-1, name="scores")

    path = tmp_path / "classifier.mlpackage"
    labels = ["red", "green", "blue"]
    ct.convert(
        program,
        convert_to="mlprogram",
        minimum_deployment_target=ct.target.iOS16,
        compute_precision=ct.precision.FLOAT32,
        classifier_config=ct.ClassifierConfig(labels),
    ).save(str(path))
    pixels = np.zeros((2, 8, 8, 3), np.uint8)
    pixels[0, ..., 0] = 200
    pixels[1, ..., 2] = 100
    means = np.array([[200, 0, 0], [0, 0, 100]], np.float32) * 0.05
    expected = np.exp(means) / np.exp(means).sum(axis=1, keepdims=True)

    loaded = CoreMLProgram(path)
    outputs = loaded.run(pixels)

    assert loaded.inputs[next(iter(loaded.inputs))]["layout"] == "NHWC"
    assert loaded.classes == labels
    assert len(loaded.outputs) == 2
    assert list(outputs) == [name for name in loaded.outputs if name != "classLabel"]
    (probabilities,) = outputs.values()
    np.testing.assert_allclose(probabilities, expected, rtol=1e-6)


def test_unknown_op_raises_at_load(tmp_path):
    ct = import_coremltools()
    from coremltools.converters.mil import Builder as mb

    @mb.program(input_specs=[mb.TensorSpec(shape=(1, 3, 8, 8))], opset_version=ct.target.iOS16)
    def program(x):
        x = mb.relu(x=x, name="supported")
        return mb.erf(x=x, name="error_function")

    path = tmp_path / "erf.mlpackage"
    ct.convert(
        program,
        convert_to="mlprogram",
        minimum_deployment_target=ct.target.iOS16,
        compute_precision=ct.precision.FLOAT32,
    ).save(str(path))

    with pytest.raises(UnsupportedOpError, match="'erf' \\(output 'error_function'\\)") as raised:
        CoreMLProgram(path)
    assert raised.value.op_type == "erf"
    assert "macOS" in str(raised.value)


def test_rejects_invalid_pixels(fp32_package):
    path = fp32_package("mobilenet_v1")

    program = CoreMLProgram(path)

    with pytest.raises(ValueError, match="got uint8 \\(1, 32, 32, 3\\)"):
        program.run(np.zeros((1, 32, 32, 3), np.uint8))
    with pytest.raises(ValueError, match="got float32 \\(1, 64, 64, 3\\)"):
        program.run(np.zeros((1, SIZE, SIZE, 3), np.float32))
    with pytest.raises(ValueError, match="N >= 1, got uint8 \\(0, 64, 64, 3\\)"):
        program.run(np.zeros((0, SIZE, SIZE, 3), np.uint8))
