"""Shared fixtures: the real torchvision V2 and one real end-to-end build, made once per session."""

from __future__ import annotations

import numpy as np
import pytest

from mobile_export._tf import import_tensorflow

import_tensorflow()

# The four photos with classes measured with torchvision's weights (shorter side 256, centre 224).
REFERENCE_CLASSES = {
    "chelsea.png": 285,  # Egyptian cat
    "coffee.png": 967,  # espresso
    "rocket.jpg": 812,  # space shuttle
    "grace_hopper.jpg": 457,  # bow tie
}


@pytest.fixture(scope="session")
def validation_photos():
    from mobile_export.contract import InputContract
    from mobile_export.data import bundled_photos, load_folder

    return load_folder(bundled_photos("validation"), InputContract(height=224, width=224))


@pytest.fixture(scope="session")
def torchvision_v2():
    """Our MobileNetV2 at 224 with torchvision's ImageNet weights."""
    from mobile_export.models import registry
    from mobile_export.models.weights import load_weights, resolve_weights

    spec = resolve_weights("mobilenet_v2", "torchvision-imagenet")
    model = registry.get("mobilenet_v2").build(
        alpha=1.0, input_shape=(224, 224), conventions=spec.conventions, batch_size=1
    )
    load_weights(model, spec)
    return model


@pytest.fixture(scope="session")
def real_build(tmp_path_factory):
    """The README's main job (real weights, bundled photos), with fp32 as well as int8."""
    from mobile_export import pipeline

    out = tmp_path_factory.mktemp("build") / "out"
    result = pipeline.build(out=out, quant=["int8", "fp32"], command=["test"])
    return result


def top1(model, pixels: np.ndarray) -> int:
    return int(np.argmax(np.asarray(model(pixels[None].astype(np.float32), training=False))[0]))
