"""Core ML export: option checks, the ML Program's structure, parity, and a build of both targets."""

import json
import platform
import shutil

import numpy as np
import pytest
from click.testing import CliRunner

from mobile_export import pipeline
from mobile_export.cli import main
from mobile_export.convert import coreml
from mobile_export.pipeline import BuildOptionError

SMALL = {"arch": "mobilenet_v2", "alpha": 0.35, "resolution": 96, "weights": "random"}
# The ImageNet-sized model takes the fast modes, and fp32 for TFLite too. palette8 runs scikit-learn's
# k-means with 256 clusters, about 30 s on that model's 410k-weight layers. So palette8 and palette6
# take a V1 at alpha 0.25 with 10 classes that ends in a softmax (the other output kind). fp16 joins
# them because the palettes start from its float16 conversion anyway.
LOGITS_MODES = ["fp32", "int8-weights", "palette4", "palette2"]
PROBABILITIES_MODES = ["fp16", "palette8", "palette6"]
on_linux = pytest.mark.skipif(platform.system() == "Darwin", reason="W8A8 builds on macOS")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"targets": ["coreml"], "quant": ["dynamic"]}, "'dynamic' is not available for coreml.*add --target tflite"),
        ({"targets": ["tflite"], "quant": ["palette4"]}, "'palette4' is not available for tflite.*add --target coreml"),
        ({"targets": ["coreml"], "quant": ["fp32"], "io_type": "float32"}, "--io-type applies to TFLite"),
        ({"targets": ["coreml"], "quant": ["fp32"], "per_tensor": True}, "--per-tensor applies to TFLite"),
        ({"targets": ["coreml"], "quant": ["fp32"], "allow_float_ops": True}, "--allow-float-ops applies to TFLite"),
        ({"targets": ["coreml", "tflite"], "quant": ["int16x8", "palette9"]}, "'palette9' is not available"),
    ],
)
def test_option_errors_before_work(tmp_path, options, message):
    with pytest.raises(BuildOptionError, match=message):
        pipeline.build(out=tmp_path / "out", **SMALL, **options)
    assert not (tmp_path / "out").exists()


@on_linux
def test_w8a8_needs_macos(tmp_path):
    with pytest.raises(BuildOptionError, match="only on macOS.*int8-weights"):
        pipeline.build(out=tmp_path / "out", targets=["coreml"], quant=["int8"], **SMALL)


@on_linux
def test_cli_w8a8_error_is_one_line(tmp_path):
    result = CliRunner().invoke(
        main, ["build", "--target", "coreml", "--quant", "int8", "--out", str(tmp_path / "out"), "--weights", "random"]
    )

    assert result.exit_code == 2
    error_lines = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(error_lines) == 1
    assert "macOS" in error_lines[0]
    assert "--quant int8-weights" in error_lines[0]
    assert "Traceback" not in result.output
    assert not (tmp_path / "out").exists()


@on_linux
def test_plan_skips_w8a8_beside_tflite():
    plan, skipped = pipeline._plan_exports(["tflite", "coreml"], ["int8", "fp32"])

    assert plan == [("tflite", "int8"), ("tflite", "fp32"), ("coreml", "fp32")]
    assert list(skipped) == ["coreml-int8"]
    assert "macOS" in skipped["coreml-int8"]
    assert "int8-weights" in skipped["coreml-int8"]


@on_linux
def test_summary_names_the_export_skipped_here(tmp_path):
    result = _build(
        out=tmp_path / "out", targets=["tflite", "coreml"], quant=["int8"], diagnose=False,
        arch="mobilenet_v1", alpha=0.25, resolution=64, weights="random",
    )

    assert [(export.target, export.mode) for export in result.exports] == [("tflite", "int8")]
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert list(summary["skipped"]) == ["coreml-int8"]
    text = (tmp_path / "out" / "summary.md").read_text()
    assert "Not built here: coreml-int8." in text
    assert "--quant int8-weights" in text


def test_plan_is_mode_major():
    plan, skipped = pipeline._plan_exports(["coreml", "tflite"], ["fp16", "palette4", "dynamic"])

    assert skipped == {}
    assert plan == [("coreml", "fp16"), ("tflite", "fp16"), ("coreml", "palette4"), ("tflite", "dynamic")]


def test_every_mode_has_a_gate():
    from mobile_export.validate.parity import DEFAULT_GATES

    for name in coreml.COREML_MODES:
        assert f"coreml-{name}" in DEFAULT_GATES


def test_package_hash_is_stable_and_sensitive(tmp_path):
    package = tmp_path / "a.mlpackage"
    (package / "Data" / "weights").mkdir(parents=True)
    (package / "Manifest.json").write_text("{}")
    (package / "Data" / "weights" / "weight.bin").write_bytes(b"\x00\x01\x02")
    first = coreml.package_sha256(package)
    copy = tmp_path / "copy.mlpackage"
    shutil.copytree(package, copy)

    assert coreml.package_sha256(copy) == first
    (copy / "Data" / "weights" / "weight.bin").write_bytes(b"\x00\x01\x03")
    assert coreml.package_sha256(copy) != first
    assert coreml.package_sha256(package / "Manifest.json") == coreml._file_sha256(package / "Manifest.json")


def _build(**options):
    try:
        return pipeline.build(command=["test"], **options)
    except pipeline.ParityGateError as error:
        # Random weights give near-tied scores, so coarse palettes change top-1 classes and miss their gates.
        return error.result


@pytest.fixture(scope="module")
def both_targets(tmp_path_factory):
    """A small random-weights V2 with ImageNet's 1000 logits: TFLite fp32 and four Core ML modes."""
    out = tmp_path_factory.mktemp("coreml") / "out"
    return _build(out=out, targets=["tflite", "coreml"], quant=LOGITS_MODES, **SMALL)


@pytest.fixture(scope="module")
def probabilities_build(tmp_path_factory):
    """A small V1 with 10 classes and a softmax, saved as a Keras file and exported with --model."""
    from mobile_export.models import registry
    from mobile_export.models.conventions import KERAS

    folder = tmp_path_factory.mktemp("coreml_probabilities")
    model = registry.get("mobilenet_v1").build(
        alpha=0.25, input_shape=(96, 96), conventions=KERAS, num_classes=10, batch_size=1
    )
    model.save(folder / "small10.keras")
    (folder / "labels.txt").write_text("".join(f"class {index}\n" for index in range(10)))
    return _build(
        out=folder / "out", model=folder / "small10.keras", input_range="0,255", labels=folder / "labels.txt",
        targets=["coreml"], quant=PROBABILITIES_MODES,
    )


def _export(result, target, mode):
    (export,) = [e for e in result.exports if e.target == target and e.mode == mode]
    return export


def _spec(export):
    ct = coreml.import_coremltools()
    return ct.models.MLModel(str(export.model_file), skip_model_load=True).get_spec()


def _op_types(spec) -> set[str]:
    function = spec.mlProgram.functions["main"]
    (block,) = function.block_specializations.values()
    return {op.type for op in block.operations}


def test_build_writes_a_folder_per_target_and_mode(both_targets):
    names = sorted(p.name for p in both_targets.out.iterdir() if p.is_dir())

    assert names == sorted(["logs", "tflite-fp32", *(f"coreml-{mode}" for mode in LOGITS_MODES)])
    summary = json.loads((both_targets.out / "summary.json").read_text())
    assert [(row["mode"], row["target"]) for row in summary["exports"]] == [
        ("fp32", "tflite"), ("fp32", "coreml"), *(("coreml", mode)[::-1] for mode in LOGITS_MODES[1:])
    ]
    table = (both_targets.out / "summary.md").read_text()
    assert table.count("| fp32 | tflite | tflite-fp32 |") == 1
    assert table.count("| fp32 | coreml | coreml-fp32 |") == 1


def test_export_folder_contents(both_targets):
    folder = both_targets.out / "coreml-palette4"

    assert sorted(p.name for p in folder.iterdir()) == sorted(
        ["mobilenet_v2_0.35_96_palette4.mlpackage", "golden.json", "labels.txt", "manifest.json", "parity.json",
         "parity.md", "scatter.png"]
    )
    assert (folder / "mobilenet_v2_0.35_96_palette4.mlpackage" / "Manifest.json").is_file()


def test_classifier_io(both_targets):
    spec = _spec(_export(both_targets, "coreml", "fp32"))

    (image,) = spec.description.input
    assert image.type.WhichOneof("Type") == "imageType"
    assert (image.type.imageType.height, image.type.imageType.width) == (96, 96)
    outputs = {feature.name: feature.type.WhichOneof("Type") for feature in spec.description.output}
    assert outputs == {"classLabel": "stringType", "classLabel_probs": "dictionaryType", "logits": "multiArrayType"}
    assert spec.description.predictedFeatureName == "classLabel"
    assert spec.description.predictedProbabilitiesName == "classLabel_probs"
    (logits,) = [feature for feature in spec.description.output if feature.name == "logits"]
    assert list(logits.type.multiArrayType.shape) == [1, 1000]


def test_image_input_takes_raw_pixels(both_targets):
    spec = _spec(_export(both_targets, "coreml", "fp32"))
    program = spec.mlProgram.functions["main"]
    (block,) = program.block_specializations.values()

    # An ImageType with scale 1 and bias 0 adds no scaling ops, so the model's own normalization comes first.
    first = [op for op in block.operations if op.type != "const"][:2]
    assert [op.type for op in first] == ["sub", "mul"]
    assert all("normalize" in op.outputs[0].name for op in first)
    assert not any("__scaled__" in op.outputs[0].name or "__biased__" in op.outputs[0].name for op in block.operations)


def test_metadata_carries_the_contract(both_targets):
    export = _export(both_targets, "coreml", "int8-weights")
    spec = _spec(export)
    manifest = json.loads((export.folder / "manifest.json").read_text())
    metadata = spec.description.metadata

    assert json.loads(metadata.userDefined["mobile_export.input_contract"]) == {
        key: value for key, value in manifest["input"].items()
        if key not in ("tensor", "core_ml_type", "dtype", "scale", "zero_point")
    }
    assert metadata.versionString == "0.1.0"
    assert metadata.author == "mobile-export"
    assert "mobilenet_v2" in metadata.shortDescription
    assert metadata.license


@pytest.mark.parametrize(
    ("mode", "version", "decompression"),
    [
        ("fp32", 6, None),
        ("int8-weights", 7, "constexpr_affine_dequantize"),
        ("palette4", 7, "constexpr_lut_to_dense"),
        ("palette2", 7, "constexpr_lut_to_dense"),
    ],
)
def test_deployment_target_and_ops(both_targets, mode, version, decompression):
    spec = _spec(_export(both_targets, "coreml", mode))
    types = _op_types(spec)

    assert spec.specificationVersion == version
    if decompression is None:
        assert not any(op.startswith("constexpr_") for op in types)
    else:
        assert decompression in types
    assert "classify" in types
    assert "softmax" in types


def test_compression_shrinks_the_package(both_targets):
    size = {mode: _export(both_targets, "coreml", mode).size_bytes for mode in LOGITS_MODES}

    # Most bytes are weights: int8 about quarters fp32, and palettes shrink with their bits.
    assert size["int8-weights"] < 0.3 * size["fp32"]
    assert size["palette4"] < 0.6 * size["int8-weights"]
    assert size["palette2"] < 0.7 * size["palette4"]


def test_manifest_describes_the_package(both_targets):
    export = _export(both_targets, "coreml", "int8-weights")
    manifest = json.loads((export.folder / "manifest.json").read_text())
    model = manifest["model"]

    assert model["target"] == "coreml"
    assert model["minimum_deployment_target"] == "iOS16"
    assert model["compute_precision"] == "float16"
    assert model["compression"] == {"method": "linear", "bits": 8, "weight_threshold": 2048}
    assert model["ops"]["constexpr_affine_dequantize"] > 0
    assert model["package_sha256"] == coreml.package_sha256(export.model_file)
    assert manifest["files"][export.model_file.name] == model["package_sha256"]
    assert manifest["input"]["dtype"] == "uint8"
    assert manifest["input"]["scale"] == 1.0
    assert manifest["output"] | {"tensor": "logits", "dtype": "float32"} == manifest["output"]
    assert manifest["calibration"] is None


def test_fp32_parity_is_exact_to_rounding(both_targets):
    parity = _export(both_targets, "coreml", "fp32").parity

    assert parity["gate"]["passed"], parity["gate"]["failures"]
    # Random weights give logits of a few units; float32 reordering changes them by about 1e-5.
    assert parity["max_abs_error"] < 1e-3
    assert parity["top1_changed"] == 0


def test_compressed_parity_orders_by_bits(both_targets, probabilities_build):
    sqnr = {mode: _export(both_targets, "coreml", mode).parity["sqnr_db"] for mode in LOGITS_MODES}
    probabilities_sqnr = {
        mode: _export(probabilities_build, "coreml", mode).parity["sqnr_db"] for mode in PROBABILITIES_MODES
    }

    assert sqnr["fp32"] > sqnr["int8-weights"] > sqnr["palette4"] > sqnr["palette2"]
    # Random weights give near-uniform probabilities, which float16 rounding alone limits to about 70 dB.
    assert probabilities_sqnr["fp16"] > 40
    assert probabilities_sqnr["palette8"] > 40
    assert probabilities_sqnr["palette6"] > 40


def test_fp16_is_float16_on_ios15(probabilities_build):
    spec = _spec(_export(probabilities_build, "coreml", "fp16"))
    types = _op_types(spec)

    assert spec.specificationVersion == 6
    assert not any(op.startswith("constexpr_") for op in types)
    assert "cast" in types


def test_probabilities_model_outputs(probabilities_build):
    export = _export(probabilities_build, "coreml", "palette6")
    spec = _spec(export)
    manifest = json.loads((export.folder / "manifest.json").read_text())

    outputs = {feature.name for feature in spec.description.output}
    assert outputs == {"classLabel", "classLabel_probs", "probabilities"}
    assert manifest["output"]["tensor"] == "probabilities"
    assert manifest["output"]["kind"] == "probabilities"
    assert manifest["output"]["shape"] == [1, 10]
    # The model's own softmax feeds the classifier, so no second softmax is added.
    assert export.parity["output_kind"] == "probabilities"
    assert manifest["model"]["ops"]["softmax"] == 1
    assert manifest["model"]["compression"]["bits"] == 6


def test_golden_cases_match_the_executor(both_targets):
    from mobile_export import golden
    from mobile_export.predict import open_runner

    export = _export(both_targets, "coreml", "int8-weights")
    manifest = json.loads((export.folder / "manifest.json").read_text())
    cases = json.loads((export.folder / "golden.json").read_text())["cases"]
    runner = open_runner(export.model_file, manifest)

    for case in cases:
        tensor = golden.decode(case, "input_tensor_base64", "uint8").reshape(1, 96, 96, 3)
        expected = golden.decode(case, "output_raw_base64", "float32")
        np.testing.assert_array_equal(runner.run_raw(tensor), expected, err_msg=case["name"])


def test_predict_on_a_coreml_export(both_targets):
    from mobile_export import predict
    from mobile_export.data import bundled_photos, list_images

    photo = list_images(bundled_photos("validation"))[0]
    export = _export(both_targets, "coreml", "fp32")
    (from_folder,) = predict.predict(export.folder, [photo], top_k=3)
    (from_package,) = predict.predict(export.model_file, [photo], top_k=3)

    assert [entry["index"] for entry in from_folder["top"]] == [entry["index"] for entry in from_package["top"]]
    assert len(from_folder["top"]) == 3
    assert from_folder["saturated"] is False


def test_bundle_ios_copies_the_package(both_targets, tmp_path):
    from mobile_export import bundle
    from mobile_export.bundle import IOS_MODEL_DIR

    app = tmp_path / "ios_demo"
    (app / "MobileExportDemo").mkdir(parents=True)
    export = _export(both_targets, "coreml", "int8-weights")

    (target,) = bundle.bundle(both_targets.out, ios=app, export="coreml-int8-weights")

    assert target == app / IOS_MODEL_DIR
    assert sorted(p.name for p in target.iterdir()) == sorted(
        [export.model_file.name, "manifest.json", "labels.txt", "golden.json"]
    )
    assert coreml.package_sha256(target / export.model_file.name) == coreml.package_sha256(export.model_file)


def test_bundle_rejects_a_tampered_package(both_targets, tmp_path):
    from mobile_export import bundle
    from mobile_export.bundle import IOS_MODEL_DIR, BundleError

    copy = tmp_path / "copy"
    shutil.copytree(_export(both_targets, "coreml", "int8-weights").folder, copy)
    (weights,) = copy.glob("*.mlpackage/Data/com.apple.CoreML/weights/weight.bin")
    weights.write_bytes(weights.read_bytes()[:-1] + b"\x00")
    app = tmp_path / "ios_demo"
    (app / "MobileExportDemo").mkdir(parents=True)

    with pytest.raises(BundleError, match="sha256"):
        bundle.bundle(copy, ios=app)
    assert not (app / IOS_MODEL_DIR).exists()


def test_bundle_android_rejects_coreml(both_targets, tmp_path):
    from mobile_export import bundle
    from mobile_export.bundle import BundleError

    app = tmp_path / "android_demo"
    app.mkdir()
    (app / "settings.gradle.kts").write_text('rootProject.name = "demo"\n')

    with pytest.raises(BundleError, match="runs TFLite models"):
        bundle.bundle(both_targets.out, android=app, export="coreml-fp32")


@pytest.mark.slow
@pytest.mark.parametrize(("mode", "max_error"), [("fp32", 1e-4), ("int8-weights", 2.0)])
def test_real_v2_keeps_top1(torchvision_v2, validation_photos, tmp_path, mode, max_error):
    from conftest import REFERENCE_CLASSES
    from mobile_export.data import load_imagenet_labels
    from mobile_export.runtime.coreml import CoreMLProgram

    mlmodel = coreml.convert(
        torchvision_v2, coreml.COREML_MODES[mode], labels=load_imagenet_labels(), output_kind="logits",
        metadata={"description": "test", "licence": "BSD-3-Clause", "version": "0", "author": "test"},
        log_path=tmp_path / "convert.log",
    )
    coreml.save(mlmodel, tmp_path / "v2.mlpackage")
    program = CoreMLProgram(tmp_path / "v2.mlpackage")
    pixels = validation_photos.pixels
    exported = program.run(pixels)["logits"]
    reference = np.stack([np.asarray(torchvision_v2(image[None].astype(np.float32)))[0] for image in pixels])

    # On logits of magnitude 10 to 20: float32 reordering stays near 2e-5; int8 weights move them by up to 0.7.
    assert len(pixels) == 13
    assert np.max(np.abs(exported - reference)) < max_error
    np.testing.assert_array_equal(np.argmax(exported, axis=1), np.argmax(reference, axis=1))
    for index, path in enumerate(validation_photos.paths):
        if path.name in REFERENCE_CLASSES:
            assert np.argmax(exported[index]) == REFERENCE_CLASSES[path.name], path.name


def test_bundle_fills_both_apps_from_one_out(both_targets, tmp_path):
    from mobile_export import bundle
    from mobile_export.bundle import ANDROID_MODEL_DIR, IOS_MODEL_DIR

    android = tmp_path / "android_demo"
    android.mkdir()
    (android / "settings.gradle.kts").write_text('rootProject.name = "demo"\n')
    ios = tmp_path / "ios_demo"
    (ios / "MobileExportDemo").mkdir(parents=True)

    written = bundle.bundle(both_targets.out, android=android, ios=ios, export=["tflite-fp32", "coreml-int8-weights"])
    models = [json.loads((folder / "manifest.json").read_text())["model"] for folder in written]

    assert written == [android / ANDROID_MODEL_DIR, ios / IOS_MODEL_DIR]
    assert [(model["target"], model["quant"]) for model in models] == [("tflite", "fp32"), ("coreml", "int8-weights")]


def test_fp32_parity_also_reports_fp16_compute(both_targets):
    parity = _export(both_targets, "coreml", "fp32").parity
    emulated = parity["fp16_compute"]

    assert "float16" in emulated["runtime"]
    assert 30.0 < emulated["sqnr_db"] < parity["sqnr_db"]
    assert _export(both_targets, "coreml", "int8-weights").parity["fp16_compute"] is None
