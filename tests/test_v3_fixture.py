"""The distilled MobileNetV3 fixtures: trained weights for V3 int8 tests, not ImageNet classifiers.

tests/data/README.md describes how benchmarks/distil_v3.py made them from torchvision's V2.
"""

from pathlib import Path

import numpy as np
import pytest

from mobile_export import pipeline

pytestmark = pytest.mark.slow

DATA = Path(__file__).parent / "data"

# Per fixture: the file, the validation photos (of 13) whose top-1 class it shares with the V2
# teacher, and the int8 export's median logits SQNR in dB, both measured when the fixture was made
# (tests/data/README.md), less a margin. Random weights agree on no photo.
FIXTURES = {
    "mobilenet_v3_small": {
        "file": "v3_small_distilled.npz", "alpha": 1.0, "min_agreeing_photos": 8, "min_int8_sqnr_db": 25.0,
    },
    "mobilenet_v3_large": {
        "file": "v3_large_075_distilled.npz", "alpha": 0.75, "min_agreeing_photos": 8, "min_int8_sqnr_db": 23.0,
    },
}


def _load(arch):
    from mobile_export.models import registry
    from mobile_export.models.weights import load_weights, resolve_weights

    spec = resolve_weights(arch, str(DATA / FIXTURES[arch]["file"]))
    model = registry.get(arch).build(
        alpha=FIXTURES[arch]["alpha"], input_shape=(224, 224), conventions=spec.conventions, batch_size=1
    )
    load_weights(model, spec)
    return model


@pytest.mark.parametrize("arch", sorted(FIXTURES))
def test_fixture_agrees_with_teacher(arch, torchvision_v2, validation_photos):
    student = _load(arch)
    pixels = validation_photos.pixels.astype(np.float32)

    student_classes = np.argmax(student.predict(pixels, batch_size=1, verbose=0), axis=1)
    teacher_classes = np.argmax(torchvision_v2.predict(pixels, batch_size=1, verbose=0), axis=1)

    assert int(np.sum(student_classes == teacher_classes)) >= FIXTURES[arch]["min_agreeing_photos"]


@pytest.mark.parametrize("arch", sorted(FIXTURES))
def test_fixture_int8_sqnr(arch, tmp_path):
    try:
        result = pipeline.build(
            out=tmp_path / "out",
            arch=arch,
            alpha=FIXTURES[arch]["alpha"],
            weights=str(DATA / FIXTURES[arch]["file"]),
            quant=["int8"],
            diagnose=False,
            command=["test"],
        )
    except pipeline.ParityGateError as error:
        # A missed gate still writes the export and its parity, which is what this test measures.
        result = error.result
    (export,) = result.exports

    assert export.parity["images"] == 13
    assert export.parity["sqnr_db"] >= FIXTURES[arch]["min_int8_sqnr_db"]
