"""Our MobileNetV2: structure, conventions, and torchvision's ImageNet weights."""

import numpy as np
import pytest

from conftest import REFERENCE_CLASSES, top1
from mobile_export.models import registry
from mobile_export.models.conventions import KERAS, TORCHVISION
from mobile_export.models.mobilenet_v2 import build_mobilenet_v2
from mobile_export.models.weights import (
    WeightsError,
    read_checkpoint,
    resolve_weights,
    save_checkpoint,
)


def _layer_kinds(model):
    return [type(layer).__name__ for layer in model.layers]


def test_parameter_count_with_torchvision_weights(torchvision_v2):
    assert torchvision_v2.count_params() == 3_538_984


@pytest.mark.parametrize("alpha", registry.get("mobilenet_v2").alphas)
def test_every_width_builds_at_small_resolution(alpha):
    model = build_mobilenet_v2(alpha=alpha, input_shape=(64, 48))

    assert model.output_shape == (None, 1000)
    assert model.get_layer("block17_project_conv").filters % 8 == 0


def test_blocks_follow_the_paper_table():
    model = build_mobilenet_v2(input_shape=(224, 224))

    # 17 inverted residual blocks; the first has no expansion layer.
    assert "block17_project_conv" in [layer.name for layer in model.layers]
    assert "block1_expand_conv" not in [layer.name for layer in model.layers]
    assert model.get_layer("block2_expand_conv").filters == 16 * 6
    # Residual adds join equal shapes: 10 of the 17 blocks have one.
    assert sum(name == "Add" for name in _layer_kinds(model)) == 10
    # Linear bottleneck: no activation after any projection.
    names = [layer.name for layer in model.layers]
    assert not any(name.endswith("_project_relu6") for name in names)
    assert model.get_layer("head_conv").output.shape[1:] == (7, 7, 1280)


def test_layer_names_do_not_depend_on_resolution():
    def weighted(model):
        return [layer.name for layer in model.layers if layer.weights]

    assert weighted(build_mobilenet_v2(input_shape=(224, 224))) == weighted(build_mobilenet_v2(input_shape=(97, 131)))


def test_torchvision_padding_is_symmetric_on_even_inputs():
    even = build_mobilenet_v2(input_shape=(224, 224), conventions=TORCHVISION)
    odd = build_mobilenet_v2(input_shape=(225, 225), conventions=TORCHVISION)
    keras_style = build_mobilenet_v2(input_shape=(224, 224), conventions=KERAS)

    # Stride-2 layers: the stem and four depthwise layers.
    assert _layer_kinds(even).count("ZeroPadding2D") == 5
    assert even.get_layer("stem_pad").padding == ((1, 1), (1, 1))
    # On odd inputs, symmetric padding equals SAME, so no extra PAD layer is needed.
    assert _layer_kinds(odd).count("ZeroPadding2D") == 0
    assert _layer_kinds(keras_style).count("ZeroPadding2D") == 0


def test_conventions_set_epsilon_normalization_and_output():
    torch_style = build_mobilenet_v2(input_shape=(64, 64), conventions=TORCHVISION)
    keras_style = build_mobilenet_v2(input_shape=(64, 64), conventions=KERAS)

    assert torch_style.get_layer("stem_bn").epsilon == 1e-5
    assert keras_style.get_layer("stem_bn").epsilon == 1e-3
    assert torch_style.layers[-1].name == "logits"
    assert keras_style.layers[-1].name == "probabilities"
    mean = np.asarray(torch_style.get_layer("normalize").mean).ravel()
    np.testing.assert_allclose(mean, [123.675, 116.28, 103.53], rtol=1e-6)


def test_normalization_matches_torchvision_on_pixels():
    model = build_mobilenet_v2(input_shape=(64, 64), conventions=TORCHVISION)
    pixels = np.random.default_rng(0).integers(0, 256, (1, 64, 64, 3)).astype(np.float32)

    normalized = np.asarray(model.get_layer("normalize")(pixels))
    expected = (pixels / 255.0 - np.array([0.485, 0.456, 0.406])) / np.array([0.229, 0.224, 0.225])

    np.testing.assert_allclose(normalized, expected, atol=1e-5)


@pytest.mark.parametrize(("photo", "expected"), sorted(REFERENCE_CLASSES.items()))
def test_torchvision_weights_give_reference_classes(torchvision_v2, validation_photos, photo, expected):
    index = [path.name for path in validation_photos.paths].index(photo)

    assert top1(torchvision_v2, validation_photos.pixels[index]) == expected


def test_rejects_unknown_width():
    with pytest.raises(ValueError, match="0.35"):
        build_mobilenet_v2(alpha=0.6)


def test_rejects_too_small_input():
    with pytest.raises(ValueError, match="at least 32"):
        build_mobilenet_v2(input_shape=(31, 64))


def test_checkpoint_round_trip(tmp_path, torchvision_v2, validation_photos):
    path = tmp_path / "v2.npz"
    save_checkpoint(
        torchvision_v2, path, arch="mobilenet_v2", alpha=1.0, conventions=TORCHVISION, description="test copy"
    )

    spec = resolve_weights("mobilenet_v2", str(path))
    assert spec.conventions == TORCHVISION
    assert spec.to_dict()["sha256"]
    arrays, meta = read_checkpoint(path)
    assert meta["arch"] == "mobilenet_v2"
    assert len(arrays) == len([layer for layer in torchvision_v2.layers if layer.weights])

    from mobile_export.models.weights import load_weights

    copy = build_mobilenet_v2(input_shape=(224, 224), conventions=spec.conventions, batch_size=1)
    load_weights(copy, spec)
    pixels = validation_photos.pixels[:2].astype(np.float32)
    np.testing.assert_array_equal(np.asarray(copy(pixels)), np.asarray(torchvision_v2(pixels)))


def test_float16_checkpoint_loads_as_float32(tmp_path, torchvision_v2, validation_photos):
    from mobile_export.models.weights import load_weights

    path = tmp_path / "v2_fp16.npz"
    save_checkpoint(
        torchvision_v2,
        path,
        arch="mobilenet_v2",
        alpha=1.0,
        conventions=TORCHVISION,
        description="float16 copy",
        dtype=np.float16,
    )
    arrays, _ = read_checkpoint(path)
    assert {array.dtype for weights in arrays.values() for array in weights} == {np.dtype(np.float16)}

    copy = build_mobilenet_v2(input_shape=(224, 224), conventions=TORCHVISION, batch_size=1)
    load_weights(copy, resolve_weights("mobilenet_v2", str(path)))
    kernel = copy.get_layer("block5_expand_conv").get_weights()[0]
    assert kernel.dtype == np.float32
    original = torchvision_v2.get_layer("block5_expand_conv").get_weights()[0]
    np.testing.assert_array_equal(kernel, original.astype(np.float16).astype(np.float32))

    # Rounding every weight to float16 (11 significant bits) keeps the top-1 class of every photo.
    pixels = validation_photos.pixels.astype(np.float32)
    assert np.array_equal(
        np.argmax(np.asarray(copy.predict(pixels, batch_size=1, verbose=0)), axis=1),
        np.argmax(np.asarray(torchvision_v2.predict(pixels, batch_size=1, verbose=0)), axis=1),
    )


def test_checkpoint_for_another_alpha_is_rejected(tmp_path):
    path = tmp_path / "small.npz"
    small = build_mobilenet_v2(alpha=0.35, input_shape=(64, 64))
    save_checkpoint(small, path, arch="mobilenet_v2", alpha=0.35, conventions=TORCHVISION, description="small")
    spec = resolve_weights("mobilenet_v2", str(path))

    from mobile_export.models.weights import load_weights

    with pytest.raises(WeightsError, match="--alpha"):
        load_weights(build_mobilenet_v2(alpha=1.0, input_shape=(64, 64)), spec)


def test_unknown_weights_source_lists_choices():
    with pytest.raises(WeightsError, match="torchvision-imagenet, imagenet, random"):
        resolve_weights("mobilenet_v2", "imagenet21k")


def test_missing_weights_file():
    with pytest.raises(WeightsError, match="does not exist"):
        resolve_weights("mobilenet_v2", "/nonexistent/weights.npz")


def test_torchvision_file_as_path_is_accepted():
    default = resolve_weights("mobilenet_v2", "torchvision-imagenet")

    explicit = resolve_weights("mobilenet_v2", str(default.path))

    assert explicit.conventions == TORCHVISION
    assert explicit.pretrained
