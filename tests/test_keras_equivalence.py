"""Our MobileNets against Keras Applications' own models, weight for weight, on real photos.

Each case builds Keras' model with ``weights=None`` (nothing is downloaded), gives it random
weights, copies them with ``keras_applications_to_layers`` and compares logits on three bundled
photos. Our models take 0..255 pixels and normalize inside; Keras' V1 and V2 take pixels mapped to
[-1, 1], while V3 rescales inside the model.
"""

import dataclasses
import functools

import keras
import numpy as np
import pytest

from mobile_export.contract import InputContract
from mobile_export.data import bundled_photos, load_folder
from mobile_export.models import registry
from mobile_export.models.conventions import KERAS
from mobile_export.models.keras_import import build_keras_application, keras_applications_to_layers
from mobile_export.models.weights import WeightsError, assign_by_name

# Float32 logits of about 1. Ours and Keras' round differently (SAME padding against an explicit
# pad, a dense layer against a 1x1 convolution, x / 6 against x * (1 / 6)). The largest difference
# over these cases was 2.6e-6 on an x86-64 CPU with TensorFlow 2.21.
TOLERANCE = 1e-5
SEED = 7
PHOTOS = 3
# A channel whose variance is tiny next to its layer's other channels carries mostly rounding
# error, and BatchNorm would blow it up to unit scale. With exact statistics, these random
# networks turn a one-ulp change of the input into logit changes of about 4e-5.
VARIANCE_FLOOR = 0.25

LOGITS = dataclasses.replace(KERAS, output="logits")
VARIANTS = list(registry.variants())
SHAPES = [
    *((arch, (128, 160)) for arch in registry.ARCHITECTURES),
    # Odd feature maps before stride-2 layers: Keras' V1 pads unlike SAME there.
    *((arch, (100, 120)) for arch in registry.ARCHITECTURES),
    ("mobilenet_v1", (224, 224)),
    ("mobilenet_v3_large", (224, 224)),
]


def variant_id(variant) -> str:
    arch, alpha, minimalistic = variant
    return f"{arch}-{alpha:g}" + ("-minimalistic" if minimalistic else "")


@functools.cache
def photos(height: int, width: int) -> np.ndarray:
    loaded = load_folder(bundled_photos("validation"), InputContract(height, width), limit=PHOTOS)
    return loaded.pixels.astype(np.float32)


def keras_input(arch: str, pixels: np.ndarray) -> np.ndarray:
    if arch.startswith("mobilenet_v3"):
        return pixels
    return pixels / 127.5 - 1.0


def randomize(model, inputs: np.ndarray, seed: int) -> None:
    """Draw BatchNorm scales, offsets and every bias, then set BatchNorm statistics from data.

    Keras' initial statistics (mean 0, variance 1) do not match the activations of its random
    kernels, so the signal fades with depth until all photos get the same logits to within 1e-7.
    One training-mode pass over ``inputs`` measures each BatchNorm's input instead,
    so each layer passes on a signal of about unit scale, as in a trained network.
    """
    rng = np.random.default_rng(seed)
    norms = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    for layer in model.layers:
        weights = layer.get_weights()
        if isinstance(layer, keras.layers.BatchNormalization):
            gamma, beta, mean, variance = weights
            layer.set_weights([rng.uniform(0.5, 1.5, gamma.shape), rng.normal(0.0, 0.1, beta.shape), mean, variance])
        elif getattr(layer, "use_bias", False):
            weights[-1] = rng.normal(0.0, 0.1, weights[-1].shape)
            layer.set_weights(weights)

    # In training mode each BatchNorm normalizes with its batch's statistics, so one pass yields
    # every layer's input as it will be once the statistics are set.
    probe = keras.Model(model.input, [layer.input for layer in norms])
    for layer, features in zip(norms, probe(inputs, training=True)):
        features = np.asarray(features)
        mean = features.mean(axis=(0, 1, 2))
        variance = features.var(axis=(0, 1, 2))
        gamma, beta, _, _ = layer.get_weights()
        layer.set_weights([gamma, beta, mean, variance + VARIANCE_FLOOR * np.median(variance)])


def logits_of_both(arch: str, alpha: float, minimalistic: bool, input_shape: tuple[int, int]):
    """Return ``(ours, keras)`` logits for the bundled photos, with Keras' random weights in both."""
    pixels = photos(*input_shape)
    inputs = keras_input(arch, pixels)

    keras.utils.set_random_seed(SEED)
    keras_model = build_keras_application(
        arch,
        alpha=alpha,
        minimalistic=minimalistic,
        input_shape=input_shape,
        weights=None,
        classifier_activation=None,
    )
    randomize(keras_model, inputs, SEED)

    ours = registry.get(arch).build(
        alpha=alpha, input_shape=input_shape, conventions=LOGITS, minimalistic=minimalistic
    )
    arrays = keras_applications_to_layers(keras_model, arch, alpha, minimalistic)
    assign_by_name(ours, arrays, origin=keras_model.name)

    return np.asarray(ours(pixels, training=False)), np.asarray(keras_model(inputs, training=False))


def assert_same_logits(ours: np.ndarray, theirs: np.ndarray) -> None:
    assert ours.shape == theirs.shape == (PHOTOS, 1000)
    assert np.abs(ours - theirs).max() <= TOLERANCE

    # Photos must differ by far more than the tolerance, or the body's weights went untested.
    gaps = [np.abs(theirs[i] - theirs[j]).max() for i in range(PHOTOS) for j in range(i + 1, PHOTOS)]
    assert min(gaps) > 100 * TOLERANCE


@pytest.mark.parametrize("variant", VARIANTS, ids=variant_id)
def test_variant_matches_keras(variant):
    arch, alpha, minimalistic = variant

    assert_same_logits(*logits_of_both(arch, alpha, minimalistic, (96, 96)))


@pytest.mark.parametrize("arch, input_shape", SHAPES, ids=[f"{arch}-{h}x{w}" for arch, (h, w) in SHAPES])
def test_resolution_matches_keras(arch, input_shape):
    assert_same_logits(*logits_of_both(arch, 1.0, False, input_shape))


@pytest.mark.parametrize(
    "built, requested, message",
    [
        (("mobilenet_v1", 0.5, False), ("mobilenet_v1", 1.0, False), "512 channels in conv_pw_13, where alpha=1"),
        (("mobilenet_v2", 1.0, False), ("mobilenet_v1", 1.0, False), "has layers that mobilenet_v1 does not"),
        (("mobilenet_v3_large", 1.0, False), ("mobilenet_v3_small", 1.0, False), "15 blocks, where"),
        (("mobilenet_v3_small", 1.0, True), ("mobilenet_v3_small", 1.0, False), "pass minimalistic=True"),
        (("mobilenet_v3_small", 1.0, False), ("mobilenet_v3_small", 1.0, True), "pass minimalistic=False"),
    ],
)
def test_import_rejects_other_variant(built, requested, message):
    arch, alpha, minimalistic = built
    keras_model = build_keras_application(
        arch, alpha=alpha, minimalistic=minimalistic, input_shape=(64, 64), weights=None
    )

    with pytest.raises(WeightsError, match=message):
        keras_applications_to_layers(keras_model, *requested)


def test_import_needs_classifier():
    keras_model = build_keras_application("mobilenet_v1", alpha=1.0, input_shape=(64, 64), weights=None, include_top=False)

    with pytest.raises(WeightsError, match="include_top=True"):
        keras_applications_to_layers(keras_model, "mobilenet_v1", 1.0)


def test_import_converts_classifier_to_dense():
    keras_model = build_keras_application("mobilenet_v3_small", alpha=1.0, input_shape=(64, 64), weights=None)

    arrays = keras_applications_to_layers(keras_model, "mobilenet_v3_small", 1.0)

    assert [a.shape for a in arrays["embedding"]] == [(576, 1024), (1024,)]
    assert [a.shape for a in arrays["logits"]] == [(1024, 1000), (1000,)]
    kernel = keras_model.get_layer("logits").get_weights()[0]
    np.testing.assert_array_equal(arrays["logits"][0], kernel[0, 0])
