"""Metadata inside the exported .tflite: labels and input contract, as LiteRT's libraries read them."""

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from mobile_export.convert import tflite_metadata

pytestmark = pytest.mark.slow

SCHEMA = Path(__file__).parent / "data" / "tflite_metadata.fbs"


@pytest.fixture(scope="module")
def int8_model(real_build):
    (export,) = [e for e in real_build.exports if e.mode == "int8"]
    return export


def test_labels_are_packed_with_the_model(int8_model):
    files = tflite_metadata.read_associated_files(int8_model.model_file.read_bytes())

    assert list(files) == ["labels.txt"]
    assert files["labels.txt"] == (int8_model.folder / "labels.txt").read_bytes()


def test_metadata_buffer_has_the_metadata_identifier(int8_model):
    metadata = tflite_metadata.read_metadata_buffer(int8_model.model_file.read_bytes())

    assert metadata[4:8] == b"M001"


@pytest.mark.skipif(shutil.which("flatc") is None, reason="flatc missing: apt-get install flatbuffers-compiler")
def test_flatc_decodes_the_metadata(int8_model, tmp_path):
    raw = tmp_path / "metadata.bin"
    raw.write_bytes(tflite_metadata.read_metadata_buffer(int8_model.model_file.read_bytes()))

    subprocess.run(
        ["flatc", "--json", "--strict-json", "--raw-binary", "-o", str(tmp_path), str(SCHEMA), "--", str(raw)],
        check=True,
        capture_output=True,
    )
    decoded = json.loads((tmp_path / "metadata.json").read_text())

    assert decoded["name"] == "mobilenet_v2_1.0_224"
    assert decoded["license"] == "BSD-3-Clause"
    assert decoded["min_parser_version"] == "1.0.0"
    (subgraph,) = decoded["subgraph_metadata"]
    (image,) = subgraph["input_tensor_metadata"]
    assert image["content"]["content_properties_type"] == "ImageProperties"
    assert image["content"]["content_properties"]["color_space"] == "RGB"
    assert image["content"]["content_properties"]["default_size"] == {"width": 224, "height": 224}
    (unit,) = image["process_units"]
    assert unit["options_type"] == "NormalizationOptions"
    # Normalization happens inside the model: raw pixels go in unchanged.
    assert unit["options"] == {"mean": [0.0], "std": [1.0]}
    assert image["stats"] == {"max": [255.0], "min": [0.0]}
    (scores,) = subgraph["output_tensor_metadata"]
    assert scores["associated_files"] == [
        {"name": "labels.txt", "description": "Class names, one per output index.", "type": "TENSOR_AXIS_LABELS"}
    ]
