"""Every registered architecture builds, exports to fp32 and int8 TFLite, and predicts.

Only MobileNetV2's ImageNet weights exist offline, so these builds use explicitly random
weights (He-normal, fixed seed), and their reports must say so.
"""

import json

import pytest

from mobile_export import pipeline
from mobile_export import predict as predict_module
from mobile_export.models import registry
from mobile_export.models.weights import WeightsError, resolve_weights

pytestmark = pytest.mark.slow

# The smallest width of each family at 64x64 keeps each conversion to a few seconds.
CASES = [(name, min(arch.alphas), False) for name, arch in registry.ARCHITECTURES.items()] + [
    (name, 1.0, True) for name, arch in registry.ARCHITECTURES.items() if arch.has_minimalistic
]


def _build(tmp_path, arch, alpha, minimalistic):
    try:
        return pipeline.build(
            out=tmp_path / "out",
            arch=arch,
            alpha=alpha,
            minimalistic=minimalistic,
            resolution=64,
            weights="random",
            quant=["fp32", "int8"],
            calibration_samples=16,
            command=["test"],
        )
    except pipeline.ParityGateError as error:
        # Random weights can miss the int8 gate; the export and its report still exist.
        return error.result


@pytest.mark.parametrize(("arch", "alpha", "minimalistic"), CASES, ids=[f"{a}-{w}-{m}" for a, w, m in CASES])
def test_build_and_predict(tmp_path, validation_photos, arch, alpha, minimalistic):
    result = _build(tmp_path, arch, alpha, minimalistic)

    exports = {export.mode: export for export in result.exports}
    assert set(exports) == {"fp32", "int8"}
    assert exports["fp32"].passed
    assert exports["fp32"].parity["max_abs_error"] < 1e-3
    int8_manifest = json.loads((exports["int8"].folder / "manifest.json").read_text())
    assert int8_manifest["input"]["dtype"] == "uint8"
    assert int8_manifest["input"]["scale"] == 1.0
    assert int8_manifest["input"]["zero_point"] == 0
    assert int8_manifest["model"]["arch"] == arch
    assert int8_manifest["model"]["minimalistic"] is minimalistic
    assert int8_manifest["weights"]["pretrained"] is False
    assert "random initialization" in (exports["int8"].folder / "parity.md").read_text()
    suffix = "_minimalistic" if minimalistic else ""
    assert exports["int8"].model_file.name == f"{arch}{suffix}_{float(alpha)}_64_int8.tflite"

    (prediction,) = predict_module.predict(exports["int8"].folder, [validation_photos.paths[0]])
    assert len(prediction["top"]) == 5


def test_architectures_without_offline_weights_need_explicit_weights():
    with pytest.raises(WeightsError, match="pass --weights"):
        resolve_weights("mobilenet_v3_large", None)


def test_keras_imagenet_lists_the_published_variants():
    with pytest.raises(WeightsError, match="alpha 1.3 at 224; alpha 1.4 at 224"):
        resolve_weights("mobilenet_v2", "imagenet", alpha=1.3, resolution=(160, 160))
    with pytest.raises(WeightsError, match="alpha 1 minimalistic at 224"):
        resolve_weights("mobilenet_v3_small", "imagenet", alpha=0.75, resolution=(224, 224), minimalistic=True)


def test_keras_imagenet_accepts_a_published_variant():
    spec = resolve_weights("mobilenet_v1", "imagenet", alpha=0.5, resolution=(160, 160))

    assert spec.conventions.name == "keras"
    assert spec.pretrained


def test_torchvision_weights_only_at_full_width():
    with pytest.raises(WeightsError, match="only for alpha 1.0"):
        resolve_weights("mobilenet_v2", "torchvision-imagenet", alpha=0.5)
